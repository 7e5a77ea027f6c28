// Auto-layout: dagre, left to right, the way data flows.
import dagre from "@dagrejs/dagre";
import type { Canvas, CanvasNode } from "./canvas";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 110;

/** The nodes placed by dagre (edges from left to right); positions are top-left corners, rounded. */
export function autoLayout({ nodes, edges }: Canvas): CanvasNode[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 80 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) {
    g.setNode(n.id, { width: n.measured?.width ?? NODE_WIDTH, height: n.measured?.height ?? NODE_HEIGHT });
  }
  for (const e of edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return nodes.map((n) => {
    const { x, y, width, height } = g.node(n.id);
    return { ...n, position: { x: Math.round(x - width / 2), y: Math.round(y - height / 2) } };
  });
}
