// A workflow run as the canvas shows it: node states and the rows going in and out of each node.
import type { NodeRun, NodeSummary } from "../types";
import type { Link } from "./ports";

/** Prefect's final states: polling stops on these. */
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]);

export function isFinal(state: string | null | undefined): boolean {
  return FINAL.has((state ?? "").toUpperCase());
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

/** Rows in (the summaries of the upstream ports that feed the node) and out (its own output summaries). */
export function nodeRows(id: string, edges: readonly Link[], runs: Readonly<Record<string, NodeRun>>): Rows {
  const summary: NodeSummary | null | undefined = runs[id]?.summary;
  const incoming = edges
    .filter((e) => e.target === id)
    .map((e) => rowsOf(runs[e.source]?.summary?.[e.sourceHandle ?? ""]));
  return { in: total(incoming), out: summary ? total(Object.values(summary).map(rowsOf)) : undefined };
}
