import { describe, expect, it } from "vitest";
import { diffLines } from "./diff";

describe("diffLines", () => {
  it("lists additions, removals and parameter changes", () => {
    const lines = diffLines({
      nodes_added: ["write"],
      nodes_removed: ["old"],
      nodes_changed: [
        { id: "infer", stage: null, params: [{ path: "model.model", before: "local-auto", after: "glm-4" }] },
        { id: "x", stage: ["clean", "validate"], params: [{ path: "gate", before: undefined, after: "drop" }] },
      ],
      edges_added: ["infer.predictions->write.predictions"],
      edges_removed: [],
    });
    expect(lines).toEqual([
      { sign: "+", text: "node write" },
      { sign: "-", text: "node old" },
      { sign: "~", text: 'infer.model.model: "local-auto" → "glm-4"' },
      { sign: "~", text: "x: stage clean → validate" },
      { sign: "~", text: 'x.gate: (unset) → "drop"' },
      { sign: "+", text: "edge infer.predictions->write.predictions" },
    ]);
  });
  it("answers nothing for equal versions", () => {
    expect(
      diffLines({ nodes_added: [], nodes_removed: [], nodes_changed: [], edges_added: [], edges_removed: [] }),
    ).toEqual([]);
  });
});
