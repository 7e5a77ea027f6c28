// The canvas <-> the workflow file (format version 1): `graph` is logic only, `layout` holds the positions.
import type { Layout, WorkflowFile, WorkflowGraph } from "../types";
import { type Canvas, type CanvasNode, makeEdge } from "./canvas";
import { autoLayout } from "./layout";

export const FORMAT = "openautoglm-workflow";
export const FORMAT_VERSION = 1;

export function toGraph({ nodes, edges }: Canvas): WorkflowGraph {
  return {
    nodes: nodes.map((n) => ({ id: n.id, stage: n.type ?? "", params: n.data.params })),
    edges: edges.map((e) => ({ source: `${e.source}.${e.sourceHandle}`, target: `${e.target}.${e.targetHandle}` })),
  };
}

export function toLayout(nodes: readonly CanvasNode[]): Layout {
  return Object.fromEntries(nodes.map((n) => [n.id, { x: Math.round(n.position.x), y: Math.round(n.position.y) }]));
}

export function toWorkflowFile(canvas: Canvas, name: string, description: string): WorkflowFile {
  return {
    format: FORMAT,
    version: FORMAT_VERSION,
    app_version: __APP_VERSION__,
    name,
    description,
    graph: toGraph(canvas),
    layout: toLayout(canvas.nodes),
  };
}

function split(dotted: string): [string, string] {
  const dot = dotted.indexOf(".");
  if (dot <= 0 || dot === dotted.length - 1) throw new Error(`'${dotted}' is not of the form node.port`);
  return [dotted.slice(0, dot), dotted.slice(dot + 1)];
}

export interface Loaded extends Canvas {
  name: string;
  description: string;
}

/** A workflow file (or a version 0 bare `{nodes, edges}` graph) as a canvas. Nodes without a position in the
 * file's layout are laid out in layers (layout.ts). Throws on a shape that is neither. */
export function fromWorkflowFile(raw: unknown): Loaded {
  if (typeof raw !== "object" || raw === null) throw new Error("not a workflow file: expected a JSON object");
  const file = raw as Partial<WorkflowFile> & Partial<WorkflowGraph>;
  const bare = file.format === undefined && Array.isArray(file.nodes);
  if (!bare && file.format !== FORMAT) throw new Error(`not a workflow file: format is not '${FORMAT}'`);
  if (!bare && (file.version ?? 0) > FORMAT_VERSION) {
    throw new Error(`workflow file version ${file.version} is newer than this page reads (${FORMAT_VERSION})`);
  }
  const graph: WorkflowGraph = bare ? { nodes: file.nodes ?? [], edges: file.edges ?? [] } : file.graph!;
  if (!graph || !Array.isArray(graph.nodes)) throw new Error("not a workflow file: no graph nodes");
  const layout: Layout = (bare ? {} : file.layout) ?? {};
  const nodes: CanvasNode[] = graph.nodes.map((n) => ({
    id: n.id,
    type: n.stage,
    position: layout[n.id] ?? { x: 0, y: 0 },
    data: { params: n.params ?? {} },
  }));
  const edges = (graph.edges ?? []).map((e) => makeEdge(...split(e.source), ...split(e.target)));
  const placed = graph.nodes.every((n) => layout[n.id]);
  return {
    name: bare ? "" : (file.name ?? ""),
    description: bare ? "" : (file.description ?? ""),
    nodes: placed ? nodes : autoLayout({ nodes, edges }),
    edges,
  };
}
