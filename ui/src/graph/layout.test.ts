import { describe, expect, it } from "vitest";
import { type CanvasNode, makeEdge } from "./canvas";
import { chain, node } from "./fixtures";
import { autoLayout, depths, type Size } from "./layout";

/** A seeded pseudo-random source (mulberry32), so that a failing case can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random DAG: edges only from a lower index to a higher one. */
function randomGraph(seed: number) {
  const next = random(seed);
  const count = 1 + Math.floor(next() * 14);
  const nodes = Array.from({ length: count }, (_, i) => node(`n${i}`, "clean", next() * 500, next() * 500));
  const edges = [];
  for (let t = 1; t < count; t++) {
    for (let s = 0; s < t; s++) if (next() < 0.25) edges.push(makeEdge(`n${s}`, "dataset", `n${t}`, `in${s}`));
  }
  const sizes = new Map(nodes.map((n) => [n.id, { width: 150 + next() * 200, height: 60 + next() * 260 }]));
  return { nodes, edges, sizeOf: (n: CanvasNode): Size => sizes.get(n.id)! };
}

describe("autoLayout", () => {
  it("places each node right of the nodes it reads from", () => {
    const placed = autoLayout(chain());
    const x = placed.map((n) => n.position.x);
    expect([...x].sort((a, b) => a - b)).toEqual(x);
    expect(new Set(x).size).toBe(4);
  });
  it("stacks siblings apart", () => {
    const nodes = [node("infer", "infer"), node("a", "evaluate"), node("b", "evaluate")];
    const edges = [
      makeEdge("infer", "predictions", "a", "predictions"),
      makeEdge("infer", "predictions", "b", "predictions"),
    ];
    const [, a, b] = autoLayout({ nodes, edges });
    expect(a.position.x).toBe(b.position.x);
    expect(Math.abs(a.position.y - b.position.y)).toBeGreaterThanOrEqual(130);
  });
  it("never overlaps two nodes and always draws an edge left to right, whatever the graph and sizes", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const { nodes, edges, sizeOf } = randomGraph(seed);
      const placed = autoLayout({ nodes, edges }, sizeOf);
      const box = new Map(placed.map((n) => [n.id, { ...n.position, ...sizeOf(n) }]));
      for (const a of placed) {
        for (const b of placed) {
          if (a.id >= b.id) continue;
          const p = box.get(a.id)!;
          const q = box.get(b.id)!;
          const apart = p.x + p.width <= q.x || q.x + q.width <= p.x || p.y + p.height <= q.y || q.y + q.height <= p.y;
          expect(apart, `seed ${seed}: ${a.id} overlaps ${b.id}`).toBe(true);
        }
      }
      for (const e of edges) {
        const s = box.get(e.source)!;
        expect(s.x + s.width, `seed ${seed}: ${e.source} -> ${e.target}`).toBeLessThan(box.get(e.target)!.x);
      }
    }
  });
  it("puts a node one layer past the deepest node feeding it, and survives a cycle", () => {
    const d = depths(
      ["a", "b", "c", "d"],
      [
        { source: "a", target: "b" },
        { source: "b", target: "c" },
        { source: "a", target: "c" },
      ],
    );
    expect(Object.fromEntries(d)).toEqual({ a: 0, b: 1, c: 2, d: 0 });
    const looped = depths(
      ["a", "b"],
      [
        { source: "a", target: "b" },
        { source: "b", target: "a" },
      ],
    );
    expect([...looped.keys()]).toEqual(["a", "b"]);
  });
});
