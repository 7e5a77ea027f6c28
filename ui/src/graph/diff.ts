// The server's semantic diff between two versions, as lines to show: `+` added, `-` removed, `~` changed.
import type { WorkflowDiff } from "../types";

export interface DiffLine {
  sign: "+" | "-" | "~";
  text: string;
}

export function showValue(value: unknown): string {
  return value === undefined ? "(unset)" : JSON.stringify(value);
}

export function diffLines(diff: WorkflowDiff): DiffLine[] {
  const lines: DiffLine[] = [
    ...diff.nodes_added.map((id) => ({ sign: "+" as const, text: `node ${id}` })),
    ...diff.nodes_removed.map((id) => ({ sign: "-" as const, text: `node ${id}` })),
  ];
  for (const change of diff.nodes_changed) {
    if (change.stage) lines.push({ sign: "~", text: `${change.id}: stage ${change.stage[0]} → ${change.stage[1]}` });
    for (const p of change.params) {
      lines.push({ sign: "~", text: `${change.id}.${p.path}: ${showValue(p.before)} → ${showValue(p.after)}` });
    }
  }
  lines.push(...diff.edges_added.map((e) => ({ sign: "+" as const, text: `edge ${e}` })));
  lines.push(...diff.edges_removed.map((e) => ({ sign: "-" as const, text: `edge ${e}` })));
  return lines;
}
