import { describe, expect, it } from "vitest";
import { chain } from "./fixtures";
import { isFinal, nodeRows } from "./run";

describe("run helpers", () => {
  it("knows Prefect's final states", () => {
    expect(isFinal("COMPLETED")).toBe(true);
    expect(isFinal("crashed")).toBe(true);
    expect(isFinal("RUNNING")).toBe(false);
    expect(isFinal(null)).toBe(false);
  });
  it("reads rows in from upstream summaries and rows out from the node's own", () => {
    const { edges } = chain();
    const runs = {
      clean: { state: "COMPLETED", state_name: "Completed", summary: { dataset: { rows_read: 12, rows_out: 10 } } },
      infer: { state: "COMPLETED", state_name: "Completed", summary: { predictions: { rows: 10, status: {} } } },
      evaluate: { state: "RUNNING", state_name: "Running", summary: null },
    };
    expect(nodeRows("infer", edges, runs)).toEqual({ in: 10, out: 10 });
    expect(nodeRows("evaluate", edges, runs)).toEqual({ in: 10, out: undefined });
    expect(nodeRows("load", edges, runs)).toEqual({ in: undefined, out: undefined });
  });
});
