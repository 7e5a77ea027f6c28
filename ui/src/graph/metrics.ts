// A Metrics port's summary as the panel shows it: a table of the figures, a bar chart of each per-label set of
// figures (F1 per label), and a table of each per-type set of rows (NER's precision/recall/F1 per entity type).
// The confusion matrix is drawn apart (confusion.ts).
import { humanise } from "./words";

export interface Figure {
  name: string;
  label: string;
  value: string;
}

export interface Bars {
  name: string;
  title: string;
  bars: { label: string; value: number; text: string }[];
  /** The largest value, for the bars' scale (1 for shares). */
  max: number;
}

export interface SubTable {
  name: string;
  title: string;
  columns: string[];
  rows: { label: string; cells: string[] }[];
}

export interface MetricsView {
  figures: Figure[];
  charts: Bars[];
  tables: SubTable[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** A figure in words: integers as they are, fractions to 3 places. */
export function figure(value: unknown): string {
  if (isNumber(value)) return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** What a metrics summary holds, laid out for the panel (keys it cannot lay out go to the figures as text). */
export function metricsView(summary: unknown, skip: readonly string[] = ["confusion_matrix"]): MetricsView {
  const view: MetricsView = { figures: [], charts: [], tables: [] };
  if (!isRecord(summary)) return view;
  for (const [name, value] of Object.entries(summary)) {
    if (skip.includes(name)) continue;
    if (isRecord(value) && Object.keys(value).length && Object.values(value).every((v) => isNumber(v) || v === null)) {
      const bars = Object.entries(value).map(([label, v]) => ({ label, value: isNumber(v) ? v : 0, text: figure(v) }));
      const max = Math.max(1, ...bars.map((b) => b.value));
      view.charts.push({ name, title: humanise(name), bars, max });
    } else if (isRecord(value) && Object.keys(value).length && Object.values(value).every(isRecord)) {
      const columns = [...new Set(Object.values(value).flatMap((row) => Object.keys(row as object)))];
      const rows = Object.entries(value).map(([label, row]) => ({
        label,
        cells: columns.map((c) => figure((row as Record<string, unknown>)[c])),
      }));
      view.tables.push({ name, title: humanise(name), columns: columns.map(humanise), rows });
    } else {
      view.figures.push({ name, label: humanise(name), value: figure(value) });
    }
  }
  return view;
}

/** The output ports of a node report that carry metrics (`Metrics` ports in the stage's outputs), with their
 * summaries. */
export function metricsOf(
  outputs: Record<string, unknown>,
  ports: readonly { name: string; type: string }[],
): Record<string, MetricsView> {
  return Object.fromEntries(
    ports
      .filter((p) => p.type === "Metrics" && isRecord(outputs[p.name]))
      .map((p) => [p.name, metricsView(outputs[p.name])]),
  );
}
