import { describe, expect, it } from "vitest";
import { figure, metricsOf, metricsView } from "./metrics";

const CLASSIFICATION = {
  n: 60,
  coverage: 1.0,
  accuracy: 0.9,
  macro_f1: 0.8987,
  f1_per_label: { 正面: 0.95, 负面: 0.9, 中性: 0.85 },
  confusion_matrix: { labels: ["正面"], columns: ["正面", "<none>"], matrix: [[1, 0]] },
};

describe("metricsView", () => {
  it("lays a classification's figures out as a table and its per-label F1 as bars", () => {
    const view = metricsView(CLASSIFICATION);
    expect(view.figures).toEqual([
      { name: "n", label: "N", value: "60" },
      { name: "coverage", label: "Coverage", value: "1" },
      { name: "accuracy", label: "Accuracy", value: "0.900" },
      { name: "macro_f1", label: "Macro F1", value: "0.899" },
    ]);
    expect(view.charts).toEqual([
      {
        name: "f1_per_label",
        title: "F1 per label",
        max: 1,
        bars: [
          { label: "正面", value: 0.95, text: "0.950" },
          { label: "负面", value: 0.9, text: "0.900" },
          { label: "中性", value: 0.85, text: "0.850" },
        ],
      },
    ]);
    expect(view.tables).toEqual([]);
  });
  it("lays NER's per-type rows out as a table", () => {
    const view = metricsView({ f1: 0.5, per_type: { PER: { precision: 0.5, recall: 1, f1: 0.667, support: 3 } } });
    expect(view.tables).toEqual([
      {
        name: "per_type",
        title: "Per type",
        columns: ["Precision", "Recall", "F1", "Support"],
        rows: [{ label: "PER", cells: ["0.500", "1", "0.667", "3"] }],
      },
    ]);
  });
  it("keeps what it cannot lay out as text, and reads only Metrics ports", () => {
    expect(figure(null)).toBe("–");
    expect(metricsView({ model: "local-auto", notes: ["a"] }).figures.map((f) => f.value)).toEqual([
      "local-auto",
      '["a"]',
    ]);
    const ports = [
      { name: "metrics", type: "Metrics" },
      { name: "predictions", type: "Predictions" },
    ];
    expect(Object.keys(metricsOf({ metrics: { accuracy: 1 }, predictions: { rows: 3 } }, ports))).toEqual(["metrics"]);
  });
});
