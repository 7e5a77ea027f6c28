// The Annotate page's types and pure logic (keys, spans, progress, the curve's points); the components render them.

export interface AnnotationProject {
  name: string;
  task_type: "text_classification" | "ner";
  labels: string[];
  entity_types: string[];
  guidelines: string;
  roles: string[];
}

export interface Span {
  text: string;
  type: string;
  start: number;
  end: number;
}

export interface PreLabel {
  model: string;
  model_version: string;
  round: number;
  label: string | null;
  entities: Span[] | null;
  confidence: number | null;
  scores: Record<string, number>;
}

export interface AnnotationItem {
  id: number;
  text: string;
  source: string;
  row_id: string;
}

export interface LabelTask {
  item: AnnotationItem | null;
  prelabel: PreLabel | null;
  answer: { label: string | null; entities: Span[] | null } | null;
  undone: "answer" | "skip" | null;
}

export interface CurvePoint {
  round: number;
  labels: number;
  score: number | null;
}

export interface AnnotationStatus {
  project: string;
  task_type: string;
  items: number;
  labelled: number;
  target: number;
  annotations: number;
  annotators: number;
  mine: number;
  kappa: number | null;
  kappa_method: string | null;
  kappa_items: number;
  per_label: Record<string, number | null>;
  disagreements: number;
  model: { name: string; version: string; aliases: string[] } | null;
  curve: CurvePoint[];
}

export interface Disagreement {
  item: AnnotationItem;
  answers: { annotator: string; label: string | null; entities: Span[] | null }[];
  prelabel: PreLabel | null;
}

/** An answer as the API takes it: a label, or the item's entities. */
export type Answer = { label: string } | { entities: Span[] };

/** What a key press on the page means (null: nothing). */
export type KeyAction =
  | { kind: "choose"; index: number }
  | { kind: "accept" }
  | { kind: "skip" }
  | { kind: "undo" };

export function keyAction(key: string): KeyAction | null {
  if (/^[1-9]$/.test(key)) return { kind: "choose", index: Number(key) - 1 };
  if (key === "Enter") return { kind: "accept" };
  if (key === "s" || key === "S") return { kind: "skip" };
  if (key === "u" || key === "U") return { kind: "undo" };
  return null;
}

/** The spans an item opens with: the answer an undo took back, else the model's pre-annotated spans. */
export function startingSpans(task: LabelTask): Span[] {
  return task.answer?.entities ?? task.prelabel?.entities ?? [];
}

/** What the page says after an undo (null: the task is no undo's). An undone answer is deleted: it no longer
 * counts, and the item waits for a new answer. */
export function undoneNote(task: Pick<LabelTask, "undone" | "answer">): string | null {
  if (task.undone === "skip") return "Skip taken back.";
  if (task.undone !== "answer") return null;
  const label = task.answer?.label;
  const was = label ? ` (${label})` : task.answer?.entities ? ` (${task.answer.entities.length} spans)` : "";
  return `Your earlier answer${was} was taken back: answer again.`;
}

/** The project's choices: its labels (classification) or entity types (NER). */
export function choices(project: AnnotationProject): string[] {
  return project.task_type === "ner" ? project.entity_types : project.labels;
}

/** The answer Enter gives: the pre-label (classification), or the spans on screen (NER); null: nothing to accept. */
export function acceptAnswer(project: AnnotationProject, task: LabelTask, spans: Span[]): Answer | null {
  if (project.task_type === "ner") return { entities: spans };
  const label = task.prelabel?.label;
  return label && project.labels.includes(label) ? { label } : null;
}

/** Add the span [start, end) of `text` as `type`; an overlapping span of any type is replaced. Empty: unchanged. */
export function addSpan(spans: Span[], text: string, start: number, end: number, type: string): Span[] {
  const [a, b] = start <= end ? [start, end] : [end, start];
  const lo = Math.max(0, a);
  const hi = Math.min(text.length, b);
  if (hi <= lo || !text.slice(lo, hi).trim()) return spans;
  const kept = spans.filter((s) => s.end <= lo || s.start >= hi);
  return [...kept, { text: text.slice(lo, hi), type, start: lo, end: hi }].sort((x, y) => x.start - y.start);
}

export function removeSpan(spans: Span[], start: number, end: number): Span[] {
  return spans.filter((s) => !(s.start === start && s.end === end));
}

/** The text cut into plain runs and spans, in order (spans assumed not to overlap), for rendering. */
export function segments(text: string, spans: Span[]): { text: string; span: Span | null; start: number }[] {
  const out: { text: string; span: Span | null; start: number }[] = [];
  let at = 0;
  for (const span of [...spans].sort((x, y) => x.start - y.start)) {
    if (span.start < at || span.end > text.length) continue;
    if (span.start > at) out.push({ text: text.slice(at, span.start), span: null, start: at });
    out.push({ text: text.slice(span.start, span.end), span, start: span.start });
    at = span.end;
  }
  if (at < text.length) out.push({ text: text.slice(at), span: null, start: at });
  return out;
}

/** Labelled / target as a percentage in [0, 100]. */
export function progress(status: Pick<AnnotationStatus, "labelled" | "target">): number {
  if (status.target <= 0) return 0;
  return Math.min(100, Math.round((100 * status.labelled) / status.target));
}

/** The learning curve as an SVG polyline's points in a `width` x `height` box (x: labels, y: score in [0, 1]). */
export function curvePoints(curve: CurvePoint[], width: number, height: number): string {
  const scored = curve.filter((p): p is CurvePoint & { score: number } => p.score !== null);
  if (!scored.length) return "";
  const most = Math.max(...scored.map((p) => p.labels), 1);
  return scored
    .map((p) => {
      const x = scored.length === 1 ? width / 2 : (p.labels / most) * width;
      const y = height - Math.max(0, Math.min(1, p.score)) * height;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** Whether the signed-in user opens the Annotate page rather than the canvas: asked for by the address
 * (`#/annotate`), or holding annotation roles only. */
export function wantsAnnotate(hash: string, roles: string[]): boolean {
  if (hash.startsWith("#/annotate")) return true;
  const canvas = roles.some((r) => r === "viewer" || r === "operator" || r === "admin");
  return !canvas && roles.some((r) => r === "annotator" || r === "reviewer");
}
