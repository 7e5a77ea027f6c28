// Auto-layout: layered, left to right the way data flows. A node's layer is its depth (the longest path from a
// node nothing feeds); layers are columns as wide as their widest node, nodes stacked in a column by their sizes
// with a gap, ordered by where their inputs sit. Nodes never overlap, whatever their sizes.
import type { Canvas, CanvasNode } from "./canvas";

export const NODE_WIDTH = 240;
export const NODE_HEIGHT = 130;
export const LAYER_GAP = 70;
export const NODE_GAP = 40;

export interface Size {
  width: number;
  height: number;
}

/** A node's drawn size when React Flow measured it, else the default. */
export const measuredSize = (n: CanvasNode): Size => ({
  width: n.measured?.width ?? n.width ?? NODE_WIDTH,
  height: n.measured?.height ?? n.height ?? NODE_HEIGHT,
});

/** Each node's depth: 0 for a node nothing feeds, else one more than the deepest node feeding it. Nodes on a cycle
 * (the canvas refuses them; an imported file may hold one) keep the depth reached when the walk stops. */
export function depths(
  ids: readonly string[],
  links: readonly { source: string; target: string }[],
): Map<string, number> {
  const known = new Set(ids);
  const feeds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const waiting = new Map<string, number>(ids.map((id) => [id, 0]));
  for (const { source, target } of links) {
    if (!known.has(source) || !known.has(target) || source === target) continue;
    feeds.get(source)!.push(target);
    waiting.set(target, waiting.get(target)! + 1);
  }
  const depth = new Map<string, number>(ids.map((id) => [id, 0]));
  const ready = ids.filter((id) => waiting.get(id) === 0);
  while (ready.length) {
    const id = ready.shift()!;
    for (const next of feeds.get(id)!) {
      depth.set(next, Math.max(depth.get(next)!, depth.get(id)! + 1));
      waiting.set(next, waiting.get(next)! - 1);
      if (waiting.get(next) === 0) ready.push(next);
    }
  }
  return depth;
}

/** The nodes placed in layers (positions are top-left corners, rounded); `sizeOf` gives each node's size. */
export function autoLayout({ nodes, edges }: Canvas, sizeOf: (n: CanvasNode) => Size = measuredSize): CanvasNode[] {
  const depth = depths(
    nodes.map((n) => n.id),
    edges,
  );
  const layers: CanvasNode[][] = [];
  for (const n of nodes) (layers[depth.get(n.id)!] ??= []).push(n);
  const sizes = new Map(nodes.map((n) => [n.id, sizeOf(n)]));
  const centre = new Map<string, number>(); // the y of each placed node's middle
  const placed = new Map<string, { x: number; y: number }>();
  let x = 0;
  for (const layer of layers.filter(Boolean)) {
    // Order: by the mean middle of the nodes feeding each node (the first layer: as the user had them).
    const key = (n: CanvasNode) => {
      const inputs = edges.filter((e) => e.target === n.id && centre.has(e.source)).map((e) => centre.get(e.source)!);
      return inputs.length ? inputs.reduce((a, b) => a + b, 0) / inputs.length : n.position.y;
    };
    const ordered = [...layer].sort((a, b) => key(a) - key(b));
    const total = ordered.reduce((sum, n) => sum + sizes.get(n.id)!.height, 0) + NODE_GAP * (ordered.length - 1);
    const wanted = ordered.map(key).reduce((a, b) => a + b, 0) / ordered.length;
    let y = (layers[0] === layer ? 0 : wanted) - total / 2;
    for (const n of ordered) {
      const { height } = sizes.get(n.id)!;
      placed.set(n.id, { x: Math.round(x), y: Math.round(y) });
      centre.set(n.id, y + height / 2);
      y += height + NODE_GAP;
    }
    x += Math.max(...layer.map((n) => sizes.get(n.id)!.width)) + LAYER_GAP;
  }
  return nodes.map((n) => ({ ...n, position: placed.get(n.id)! }));
}
