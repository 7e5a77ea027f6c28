import { describe, expect, it } from "vitest";
import { renameNode } from "./canvas";
import { fromWorkflowFile, toWorkflowFile } from "./convert";
import { chain } from "./fixtures";

describe("workflow file", () => {
  it("writes logic in graph and positions in layout", () => {
    const canvas = chain();
    canvas.nodes[1] = { ...canvas.nodes[1], position: { x: 10.4, y: 20.6 }, data: { params: { lower: true } } };
    const file = toWorkflowFile(canvas, "demo", "a demo");
    expect(file).toMatchObject({ format: "openautoglm-workflow", version: 1, name: "demo", description: "a demo" });
    expect(file.graph.nodes[1]).toEqual({ id: "clean", stage: "clean", params: { lower: true } });
    expect(file.graph.edges[0]).toEqual({ source: "load.dataset", target: "clean.dataset" });
    expect(file.layout.clean).toEqual({ x: 10, y: 21 });
    expect(JSON.stringify(file.graph)).not.toContain("position");
  });
  it("round-trips through the file", () => {
    const canvas = chain();
    const loaded = fromWorkflowFile(JSON.parse(JSON.stringify(toWorkflowFile(canvas, "demo", ""))));
    expect(loaded.name).toBe("demo");
    expect(loaded.nodes.map((n) => [n.id, n.type, n.position])).toEqual(
      canvas.nodes.map((n) => [n.id, n.type, n.position]),
    );
    expect(loaded.edges).toEqual(canvas.edges);
  });
  it("migrates a version 0 bare graph and lays it out", () => {
    const loaded = fromWorkflowFile({
      nodes: [
        { id: "load", stage: "load", params: {} },
        { id: "clean", stage: "clean", params: {} },
      ],
      edges: [{ source: "load.dataset", target: "clean.dataset" }],
    });
    expect(loaded.edges[0]).toMatchObject({
      source: "load",
      sourceHandle: "dataset",
      target: "clean",
      targetHandle: "dataset",
    });
    const [load, clean] = loaded.nodes;
    expect(clean.position.x).toBeGreaterThan(load.position.x); // laid out left to right
  });
  it("refuses what is not a workflow file", () => {
    expect(() => fromWorkflowFile("x")).toThrow(/JSON object/);
    expect(() => fromWorkflowFile({ format: "other" })).toThrow(/format/);
    expect(() =>
      fromWorkflowFile({ format: "openautoglm-workflow", version: 9, graph: { nodes: [], edges: [] } }),
    ).toThrow(/newer/);
    expect(() => fromWorkflowFile({ nodes: [], edges: [{ source: "load", target: "clean.dataset" }] })).toThrow(
      /node.port/,
    );
  });
  it("renames a node and the edges that touch it", () => {
    const renamed = renameNode(chain(), "clean", "scrub");
    expect(renamed.nodes.map((n) => n.id)).toEqual(["load", "scrub", "infer", "evaluate"]);
    expect(renamed.edges.map((e) => e.id)).toEqual([
      "load.dataset->scrub.dataset",
      "scrub.dataset->infer.dataset",
      "infer.predictions->evaluate.predictions",
    ]);
  });
});
