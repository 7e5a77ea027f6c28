// The confusion matrix an evaluate node reports (metrics.confusion_matrix: rows gold, columns predicted), as
// the cells of a shaded table: what the preview draws for a finished evaluate node.

export interface Confusion {
  labels: string[]; // gold labels (rows)
  columns: string[]; // predicted labels (columns; may add e.g. a "no answer" column)
  matrix: number[][];
}

export interface Cell {
  count: number;
  share: number; // of the row's gold count, 0..1 (0 for an empty row)
  diagonal: boolean;
}

const isNumbers = (row: unknown): row is number[] => Array.isArray(row) && row.every((v) => typeof v === "number");
const isStrings = (list: unknown): list is string[] => Array.isArray(list) && list.every((v) => typeof v === "string");

/** Every confusion matrix in a node summary's outputs (by output port), well-formed ones only. */
export function confusionMatrices(summary: unknown): Record<string, Confusion> {
  const outputs = (summary as { outputs?: Record<string, unknown> } | null)?.outputs ?? {};
  const found: Record<string, Confusion> = {};
  for (const [port, value] of Object.entries(outputs)) {
    const candidate = (value as { confusion_matrix?: Partial<Confusion> } | null)?.confusion_matrix;
    if (
      candidate &&
      isStrings(candidate.labels) &&
      isStrings(candidate.columns) &&
      Array.isArray(candidate.matrix) &&
      candidate.matrix.length === candidate.labels.length &&
      candidate.matrix.every((row) => isNumbers(row) && row.length === candidate.columns!.length)
    ) {
      found[port] = candidate as Confusion;
    }
  }
  return found;
}

/** The table's cells, row by row: counts, the share of their gold row (for shading) and the diagonal. */
export function cells(confusion: Confusion): Cell[][] {
  return confusion.matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({
      count,
      share: total > 0 ? count / total : 0,
      diagonal: confusion.columns[j] === confusion.labels[i],
    }));
  });
}
