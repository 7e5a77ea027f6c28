import { describe, expect, it } from "vitest";
import { chain } from "./fixtures";
import { afterPoll, canRetry, isFinal, nodeBadge, nodeFailure, nodeRows, previewRows, runLine } from "./run";

describe("run helpers", () => {
  it("knows Prefect's final states", () => {
    expect(isFinal("COMPLETED")).toBe(true);
    expect(isFinal("crashed")).toBe(true);
    expect(isFinal("RUNNING")).toBe(false);
    expect(isFinal(null)).toBe(false);
  });
  it("retries failed, crashed and cancelled runs only", () => {
    expect(canRetry("FAILED")).toBe(true);
    expect(canRetry("crashed")).toBe(true);
    expect(canRetry("CANCELLED")).toBe(true);
    expect(canRetry("COMPLETED")).toBe(false);
    expect(canRetry("RUNNING")).toBe(false);
    expect(canRetry(null)).toBe(false);
  });
  it("follows a run to its end, a retried one past its old final state", () => {
    expect(afterPoll("RUNNING", true, 1, 10)).toEqual({ show: true, again: true, restarted: true });
    expect(afterPoll("COMPLETED", true, 5, 10)).toEqual({ show: true, again: false, restarted: true });
    expect(afterPoll("FAILED", false, 1, 10)).toEqual({ show: false, again: true, restarted: false });
    expect(afterPoll("PENDING", false, 2, 10)).toEqual({ show: true, again: true, restarted: true });
    expect(afterPoll("FAILED", false, 10, 10)).toEqual({ show: true, again: false, restarted: true });
  });
  it("badges a node by its state, a reused one as cached", () => {
    expect(nodeBadge(undefined)).toBe("pending");
    expect(nodeBadge({ state: "RUNNING", state_name: "Running" })).toBe("running");
    expect(nodeBadge({ state: "COMPLETED", state_name: "Completed" })).toBe("completed");
    expect(nodeBadge({ state: "COMPLETED", state_name: "Cached" })).toBe("cached");
    expect(nodeBadge({ state: "FAILED", state_name: null })).toBe("failed");
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
  it("takes a node report's own rows and reads upstream ports from its outputs", () => {
    const { edges } = chain();
    const report = (rowsIn: number | null, rowsOut: number | null, outputs: object) => ({
      state: "COMPLETED",
      state_name: "Completed",
      summary: { inputs: {}, outputs, preview: { dataset: [{ text: "a" }] }, rows_in: rowsIn, rows_out: rowsOut },
    });
    const runs = {
      load: report(null, 12, { dataset: { rows_out: 12 } }),
      clean: report(12, 10, { dataset: { rows_out: 10 } }),
    };
    expect(nodeRows("load", edges, runs)).toEqual({ in: undefined, out: 12 });
    expect(nodeRows("clean", edges, runs)).toEqual({ in: 12, out: 10 });
    const old = { infer: { state: "RUNNING", state_name: "", summary: null } };
    expect(nodeRows("infer", edges, { ...runs, ...old })).toEqual({ in: 10, out: undefined });
    expect(previewRows(runs.clean.summary)).toEqual({ dataset: [{ text: "a" }] });
    expect(previewRows({ dataset: { rows_out: 1 } })).toEqual({});
  });
});

describe("nodeFailure", () => {
  const failed = { state: "FAILED", state_name: "Failed", summary: null };
  it("is null for a node that did not fail", () => {
    expect(nodeFailure(undefined, "x")).toBeNull();
    expect(nodeFailure({ ...failed, state: "COMPLETED" }, "x")).toBeNull();
  });
  it("shows the node's own error and what to do, in the page's terms", () => {
    const error = { message: "2 rows break the expectations", what_to_do: "run with --gate quarantine" };
    expect(nodeFailure({ ...failed, error }, "run failed")).toEqual({
      message: "2 rows break the expectations",
      whatToDo: "set 'Gate' to quarantine in this node's form",
    });
    expect(nodeFailure({ ...failed, state: "CRASHED", error: { message: "killed", what_to_do: null } })).toEqual({
      message: "killed",
      whatToDo: null,
    });
  });
  it("falls back on the run's message, its advice apart", () => {
    const said = "Node 'validate': 2 rows break the expectations; fix the rows listed, or run with --gate quarantine";
    expect(nodeFailure(failed, said)).toEqual({
      message: "Node 'validate': 2 rows break the expectations",
      whatToDo: "fix the rows listed, or set 'Gate' to quarantine in this node's form",
    });
    expect(nodeFailure(failed, "no file (hint: upload it first)")).toEqual({
      message: "no file",
      whatToDo: "upload it first",
    });
    expect(nodeFailure(failed, null)?.whatToDo).toMatch(/Prefect task run/);
  });
});

// What the API said of a failed run before nodes had their own error (seen 2026-12-07).
const GATE =
  "Flow run encountered an exception: ValidationGateError: Validation failed: - expect_column_values_to_be_in_set " +
  "on 'label': 15 of 60 rows fail (e.g. '中性') hint: fix the rows listed, or run with --gate quarantine to set " +
  "them aside with their reasons";

describe("runLine", () => {
  const failed = { state: "FAILED", state_name: "Failed", summary: null };
  const done = { state: "COMPLETED", state_name: "Completed", summary: null };
  it("names the failed node and its error, without exception classes or CLI flags", () => {
    const line = runLine({ id: "r1", state: "FAILED", message: GATE }, { load: done, validate: failed });
    expect(line).toBe(
      "run r1: failed at node 'validate': Validation failed: - expect_column_values_to_be_in_set on 'label': " +
        "15 of 60 rows fail (e.g. '中性'); open the node to see what to do",
    );
    expect(nodeFailure(failed, GATE)?.whatToDo).toBe(
      "fix the rows listed, or set 'Gate' to quarantine in this node's form to set them aside with their reasons",
    );
  });
  it("says a completed run and a run that failed outside any node plainly", () => {
    expect(runLine({ id: "r2", state: "COMPLETED", message: "All states completed." }, { a: done })).toBe(
      "run r2: completed",
    );
    expect(runLine({ id: "r3", state: "CRASHED", message: "RuntimeError: worker lost" }, { a: done })).toBe(
      "run r3: crashed (worker lost)",
    );
    expect(runLine({ id: "r4", state: "CANCELLED", message: null }, undefined)).toBe("run r4: cancelled");
  });
});
