// Names in words: a parameter's key as a title ("time_budget_s" -> "Time budget (s)"), class names and CLI
// flags recognised, so that the page never shows "InferParams" or tells a GUI user to pass "--gate".

/** Words written in capitals (or their own way) wherever they appear in a title. */
const SPELLED: Record<string, string> = {
  api: "API",
  csv: "CSV",
  f1: "F1",
  gnn: "GNN",
  hpo: "HPO",
  id: "ID",
  jsonl: "JSONL",
  lr: "learning rate",
  mlflow: "MLflow",
  ner: "NER",
  sql: "SQL",
  url: "URL",
};

/** Unit suffixes of a key, written after the words: "timeout_s" -> "Timeout (s)". */
const UNITS: Record<string, string> = { s: "(s)", ms: "(ms)", mb: "(MB)", gb: "(GB)", pct: "(%)" };

/** The words of a key: snake_case, kebab-case and camelCase split, lower case. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[\s_-]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** A field's key as a title, sentence case: "label_column" -> "Label column", "id_column" -> "ID column". */
export function humanise(key: string): string {
  const parts = words(key);
  const unit = parts.length > 1 && UNITS[parts[parts.length - 1]] ? UNITS[parts.pop()!] : null;
  const text = parts.map((w) => SPELLED[w] ?? w).join(" ");
  const first = text.charAt(0);
  const titled = first === first.toLowerCase() ? first.toUpperCase() + text.slice(1) : text;
  return unit ? `${titled} ${unit}` : titled;
}

/** The title pydantic writes for a field it was given none for: "time_budget_s" -> "Time Budget S". */
export function generatedTitle(key: string): string {
  return key
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())
    .join(" ")
    .trim();
}

/** A class name used as a title ("InferParams", "TaskConfig", "CsvSource"): no spaces, two capitalised words. */
export function isClassName(title: string): boolean {
  return /^[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+$/.test(title);
}

/** A CLI flag in advice ("run with --gate quarantine") put in the page's terms: the node's form field. */
export function pageTerms(text: string): string {
  return text.replace(
    /(?:(?:re-?)?run (?:it |again )?with )?--([a-z][a-z0-9-]*)(?:[ =]((?!--)[^\s,;)]+))?/g,
    (_, flag: string, value: string | undefined) =>
      value === undefined
        ? `turn on '${humanise(flag)}' in this node's form`
        : `set '${humanise(flag)}' to ${value} in this node's form`,
  );
}

/** A run's message without the machinery's words: Prefect's "Flow run encountered an exception: " and an exception
 * class name ("ValidationGateError: ") go; advice ("hint: ...") is put in the page's terms. */
export function plainMessage(text: string): string {
  return pageTerms(
    text
      .replace(/^\s*Flow run encountered an exception:\s*/i, "")
      .replace(/^[A-Z][A-Za-z0-9_.]*(?:Error|Exception|Failure):\s*/, "")
      .trim(),
  );
}
