import { describe, expect, it } from "vitest";
import { cells, confusionMatrices } from "./confusion";

const matrix = { labels: ["正面", "负面"], columns: ["正面", "负面", "(none)"], matrix: [[8, 2, 0], [0, 0, 0]] };

describe("confusionMatrices", () => {
  it("finds the matrix of an evaluate node's metrics output", () => {
    const summary = { outputs: { metrics: { accuracy: 0.8, confusion_matrix: matrix } }, rows_in: 10 };
    expect(confusionMatrices(summary)).toEqual({ metrics: matrix });
  });

  it("ignores summaries without one, and malformed ones", () => {
    expect(confusionMatrices(null)).toEqual({});
    expect(confusionMatrices({ outputs: { dataset: { rows_out: 3 } } })).toEqual({});
    const ragged = { ...matrix, matrix: [[1, 2], [3]] };
    expect(confusionMatrices({ outputs: { metrics: { confusion_matrix: ragged } } })).toEqual({});
    const words = { ...matrix, matrix: [["a", "b", "c"], [0, 0, 0]] };
    expect(confusionMatrices({ outputs: { metrics: { confusion_matrix: words } } })).toEqual({});
  });
});

describe("cells", () => {
  it("shades by the share of the gold row and marks the diagonal by label, not by position", () => {
    const [first, empty] = cells(matrix);
    expect(first.map((c) => c.share)).toEqual([0.8, 0.2, 0]);
    expect(first.map((c) => c.diagonal)).toEqual([true, false, false]);
    expect(empty.map((c) => c.share)).toEqual([0, 0, 0]);
    expect(empty[1].diagonal).toBe(true);
  });
});
