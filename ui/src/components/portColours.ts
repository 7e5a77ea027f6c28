// One colour per port type, the same on handles, labels and the palette.
const COLOURS: Record<string, string> = {
  Dataset: "#2563eb",
  Predictions: "#9333ea",
  Metrics: "#059669",
  Report: "#d97706",
  Prompt: "#db2777",
  Graph: "#0891b2",
  Model: "#dc2626",
  Files: "#4b5563",
};

export function portColour(type: string): string {
  return COLOURS[type] ?? "#6b7280";
}
