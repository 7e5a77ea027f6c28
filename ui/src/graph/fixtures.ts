// A small catalogue and canvas for the tests (shaped like GET /api/v1/stages and examples/pipeline/run_task.json).
import type { StageInfo, StagePort } from "../types";
import { type CanvasNode, makeEdge } from "./canvas";
import { catalogueOf } from "./ports";

const port = (name: string, type: string): StagePort => ({ name, type, description: "", required: true });

export const STAGES: StageInfo[] = [
  { name: "load", description: "", inputs: [], outputs: [port("dataset", "Dataset")], params_schema: {} },
  {
    name: "clean",
    description: "",
    inputs: [port("dataset", "Dataset")],
    outputs: [port("dataset", "Dataset")],
    params_schema: {},
  },
  {
    name: "infer",
    description: "",
    inputs: [port("dataset", "Dataset")],
    outputs: [port("predictions", "Predictions")],
    params_schema: {},
  },
  {
    name: "evaluate",
    description: "",
    inputs: [port("predictions", "Predictions")],
    outputs: [port("metrics", "Metrics")],
    params_schema: {},
  },
];

export const CATALOGUE = catalogueOf(STAGES);

export function node(id: string, stage: string, x = 0, y = 0, selected = false): CanvasNode {
  return { id, type: stage, position: { x, y }, data: { params: {} }, selected };
}

/** load -> clean -> infer -> evaluate */
export function chain() {
  return {
    nodes: [node("load", "load"), node("clean", "clean"), node("infer", "infer"), node("evaluate", "evaluate")],
    edges: [
      makeEdge("load", "dataset", "clean", "dataset"),
      makeEdge("clean", "dataset", "infer", "dataset"),
      makeEdge("infer", "predictions", "evaluate", "predictions"),
    ],
  };
}
