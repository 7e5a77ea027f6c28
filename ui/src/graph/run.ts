// A workflow run as the canvas shows it: node states and the rows going in and out of each node.
import type { NodeRun, NodeSummary } from "../types";
import type { Link } from "./ports";
import { pageTerms, plainMessage } from "./words";

/** Prefect's final states: polling stops on these. */
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]);

export function isFinal(state: string | null | undefined): boolean {
  return FINAL.has((state ?? "").toUpperCase());
}

/** What a poll of a followed run leads to: whether to show the state read and to poll again. A run not yet
 * `restarted` (just retried, still reading as its old final state) is not shown nor left while it reads final,
 * for `grace` polls at most. */
export function afterPoll(
  state: string | null | undefined,
  restarted: boolean,
  polls: number,
  grace: number,
): { show: boolean; again: boolean; restarted: boolean } {
  const final = isFinal(state);
  const now = restarted || !final || polls >= grace;
  return { show: now, again: !final || !now, restarted: now };
}

/** Final states a run can be retried from (POST /workflow-runs/{id}/retry). */
const RETRIABLE = new Set(["FAILED", "CRASHED", "CANCELLED"]);

export function canRetry(state: string | null | undefined): boolean {
  return RETRIABLE.has((state ?? "").toUpperCase());
}

/** A node's badge text: its state in lower case, "cached" for a node a retried run reused (state_name
 * "Cached"), "pending" for a node with no task run yet. */
export function nodeBadge(run: Pick<NodeRun, "state" | "state_name"> | undefined): string {
  if (!run) return "pending";
  if (run.state_name === "Cached") return "cached";
  return run.state.toLowerCase();
}

/** The rows of one port summary: a dataset's `rows_out`, predictions' `rows`. */
export function rowsOf(portSummary: unknown): number | undefined {
  if (typeof portSummary !== "object" || portSummary === null) return undefined;
  const s = portSummary as Record<string, unknown>;
  const rows = s.rows_out ?? s.rows;
  return typeof rows === "number" ? rows : undefined;
}

function total(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}

export interface Rows {
  in?: number;
  out?: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A node's output summaries by port: a node report's `outputs`, or the summary itself when it is `{port: summary}`. */
export function outputSummaries(summary: NodeSummary | null | undefined): Record<string, unknown> {
  if (!summary) return {};
  return isRecord(summary.outputs) ? summary.outputs : summary;
}

/** A node report's first rows of each output (`preview: {port: rows}`), when the server sent them. */
export function previewRows(summary: NodeSummary | null | undefined): Record<string, Record<string, unknown>[]> {
  const preview = summary?.preview;
  if (!isRecord(preview)) return {};
  return Object.fromEntries(
    Object.entries(preview).filter((e): e is [string, Record<string, unknown>[]] => Array.isArray(e[1])),
  );
}

const count = (v: unknown) => (typeof v === "number" ? v : undefined);

/** Rows in and out of a node: the report's own `rows_in`/`rows_out` when it has them, else rows in from the
 * upstream ports that feed the node and rows out from its own output summaries. */
export function nodeRows(id: string, edges: readonly Link[], runs: Readonly<Record<string, NodeRun>>): Rows {
  const summary = runs[id]?.summary;
  if (summary && ("rows_in" in summary || "rows_out" in summary)) {
    return { in: count(summary.rows_in), out: count(summary.rows_out) };
  }
  const incoming = edges
    .filter((e) => e.target === id)
    .map((e) => rowsOf(outputSummaries(runs[e.source]?.summary)[e.sourceHandle ?? ""]));
  return { in: total(incoming), out: summary ? total(Object.values(outputSummaries(summary)).map(rowsOf)) : undefined };
}

/** Why a node failed and what to do, for its panel and card; null for a node that did not fail. */
export interface Failure {
  message: string;
  whatToDo: string | null;
}

const FAILED = new Set(["FAILED", "CRASHED"]);

/** A failed node's error: the node's own (`error`, from the API), else the run's message (older APIs put it only
 * there), else a pointer to its task run. Advice is put in the page's terms (a CLI flag becomes a form field). */
export function nodeFailure(node: NodeRun | undefined, runMessage?: string | null): Failure | null {
  if (!node || !FAILED.has(node.state.toUpperCase())) return null;
  if (node.error?.message) {
    return { message: node.error.message, whatToDo: node.error.what_to_do ? pageTerms(node.error.what_to_do) : null };
  }
  const said = runMessage ? plainMessage(runMessage) : "";
  if (!said) {
    return {
      message: `${node.state_name ?? "Failed"}, with no message`,
      whatToDo: "open its Prefect task run for the log",
    };
  }
  // "<message> hint: <advice>", "<message> (hint: <advice>)" or "<message>; <advice>": the advice apart.
  const hint = /^(.*?)\s*(?:\(?hint:\s*(.*?)\)?|;\s*((?:fix|set|run|use|check|add|remove|give|choose)\b.*))$/is.exec(
    said,
  );
  if (hint) return { message: hint[1], whatToDo: hint[2] ?? hint[3] };
  return { message: said, whatToDo: null };
}

/** The status line's words for a finished run: which node failed and why (its panel says what to do). */
export function runLine(
  job: { id: string; state: string | null; message: string | null },
  nodes: Readonly<Record<string, NodeRun>> | undefined,
): string {
  const state = (job.state ?? "unknown").toLowerCase();
  if (state === "completed") return `run ${job.id}: completed`;
  const failed = Object.entries(nodes ?? {})
    .map(([id, node]) => [id, nodeFailure(node, job.message)] as const)
    .filter(([, failure]) => failure !== null);
  if (failed.length) {
    const [id, failure] = failed[0];
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more node(s))` : "";
    return `run ${job.id}: ${state} at node '${id}'${more}: ${failure!.message}; open the node to see what to do`;
  }
  return job.message ? `run ${job.id}: ${state} (${plainMessage(job.message)})` : `run ${job.id}: ${state}`;
}
