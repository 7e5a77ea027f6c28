// The canvas's node and edge shapes (React Flow's, with a stage's parameters as node data).
import type { Edge, Node } from "@xyflow/react";
import type { Params } from "../types";

/** Node data: the stage's parameters. The node's React Flow `type` is its stage name. */
export type StageNodeData = { params: Params };
export type CanvasNode = Node<StageNodeData>;
export type CanvasEdge = Edge;

/** The canvas's picture of a workflow: what undo/redo snapshots and the file conversions work on. */
export interface Canvas {
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

export function edgeId(source: string, sourceHandle: string, target: string, targetHandle: string): string {
  return `${source}.${sourceHandle}->${target}.${targetHandle}`;
}

export function makeEdge(source: string, sourceHandle: string, target: string, targetHandle: string): CanvasEdge {
  return { id: edgeId(source, sourceHandle, target, targetHandle), source, sourceHandle, target, targetHandle };
}

/** The canvas with node `from` called `to`, its edges following it. */
export function renameNode(canvas: Canvas, from: string, to: string): Canvas {
  const name = (id: string) => (id === from ? to : id);
  return {
    nodes: canvas.nodes.map((n) => (n.id === from ? { ...n, id: to } : n)),
    edges: canvas.edges.map((e) =>
      e.source === from || e.target === from
        ? makeEdge(name(e.source), e.sourceHandle ?? "", name(e.target), e.targetHandle ?? "")
        : e,
    ),
  };
}
