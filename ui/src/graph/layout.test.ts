import { describe, expect, it } from "vitest";
import { makeEdge } from "./canvas";
import { chain, node } from "./fixtures";
import { autoLayout } from "./layout";

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
    expect(Math.abs(a.position.y - b.position.y)).toBeGreaterThanOrEqual(110);
  });
});
