import { describe, expect, it } from "vitest";
import { copySelection, paste } from "./clipboard";
import { chain } from "./fixtures";

describe("copy and paste", () => {
  it("copies the selected nodes and only the edges between them", () => {
    const canvas = chain();
    canvas.nodes = canvas.nodes.map((n) => ({ ...n, selected: n.id === "clean" || n.id === "infer" }));
    const clip = copySelection(canvas);
    expect(clip.nodes.map((n) => n.id)).toEqual(["clean", "infer"]);
    expect(clip.edges.map((e) => e.id)).toEqual(["clean.dataset->infer.dataset"]);

    const after = paste(canvas, clip);
    const added = after.nodes.slice(canvas.nodes.length);
    expect(added.map((n) => n.id)).toEqual(["clean-2", "infer-2"]);
    expect(added[0].position).toEqual({ x: 40, y: 40 });
    expect(after.edges.at(-1)!.id).toBe("clean-2.dataset->infer-2.dataset");
    expect(after.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["clean-2", "infer-2"]);
  });
  it("gives pasted nodes their own parameters", () => {
    const canvas = chain();
    canvas.nodes[0] = { ...canvas.nodes[0], selected: true, data: { params: { source: { path: "a.csv" } } } };
    const after = paste(canvas, copySelection(canvas));
    (after.nodes.at(-1)!.data.params.source as { path: string }).path = "b.csv";
    expect((canvas.nodes[0].data.params.source as { path: string }).path).toBe("a.csv");
  });
});
