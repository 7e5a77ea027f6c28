// Copy/paste: the selected nodes and the edges between them, pasted under fresh ids next to the originals.
import { type Canvas, makeEdge } from "./canvas";
import { uniqueId } from "./ids";

export const PASTE_OFFSET = 40;

export function copySelection({ nodes, edges }: Canvas): Canvas {
  const picked = nodes.filter((n) => n.selected);
  const ids = new Set(picked.map((n) => n.id));
  return { nodes: picked, edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)) };
}

/** The canvas with `clip` added: new ids, shifted, the pasted nodes selected and only them. */
export function paste(canvas: Canvas, clip: Canvas, offset = PASTE_OFFSET): Canvas {
  const taken = new Set(canvas.nodes.map((n) => n.id));
  const renamed = new Map<string, string>();
  for (const n of clip.nodes) {
    const id = uniqueId(n.id, taken);
    taken.add(id);
    renamed.set(n.id, id);
  }
  const pasted = clip.nodes.map((n) => ({
    ...n,
    id: renamed.get(n.id)!,
    position: { x: n.position.x + offset, y: n.position.y + offset },
    data: structuredClone(n.data),
    selected: true,
  }));
  const links = clip.edges.map((e) =>
    makeEdge(renamed.get(e.source)!, e.sourceHandle ?? "", renamed.get(e.target)!, e.targetHandle ?? ""),
  );
  return {
    nodes: [...canvas.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...pasted],
    edges: [...canvas.edges, ...links],
  };
}
