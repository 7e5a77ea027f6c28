// One item at a time with the model's pre-label: keys 1-9 pick a label (NER: mark the selected text as that type),
// Enter accepts the pre-label (NER: the spans shown), S skips, U takes back the last answer (deleted) or skip.
import { useCallback, useEffect, useRef, useState } from "react";
import {
  type AnnotationProject,
  type Answer,
  type LabelTask,
  type Span,
  acceptAnswer,
  addSpan,
  choices,
  keyAction,
  removeSpan,
  startingSpans,
  undoneNote,
} from "../annotate";
import type { Api } from "../api";
import { AnnotateText, offsetsOf } from "./AnnotateText";

export function AnnotateLabel({
  api,
  project,
  onAnswered,
}: {
  api: Api;
  project: AnnotationProject;
  onAnswered: () => void;
}) {
  const [task, setTask] = useState<LabelTask | null>(null);
  const [spans, setSpans] = useState<Span[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const shown = useRef(performance.now());
  const textBox = useRef<HTMLDivElement>(null);
  const labels = choices(project);
  const ner = project.task_type === "ner";

  const show = useCallback((next: LabelTask) => {
    setTask(next);
    setSpans(startingSpans(next));
    shown.current = performance.now();
  }, []);

  const run = useCallback(
    async (step: () => Promise<LabelTask>, answered: boolean) => {
      setBusy(true);
      setError(null);
      try {
        show(await step());
        if (answered) onAnswered();
      } catch (e) {
        setError((e as Error).message);
      } finally {
        setBusy(false);
      }
    },
    [show, onAnswered],
  );

  useEffect(() => {
    void run(() => api.annotationNext(project.name), false);
  }, [api, project.name, run]);

  const submit = useCallback(
    (answer: Answer) => {
      const item = task?.item;
      if (!item) return;
      const seconds = Math.min(86_400, (performance.now() - shown.current) / 1000);
      void run(async () => {
        await api.annotationAnswer(project.name, item.id, answer, seconds);
        return api.annotationNext(project.name);
      }, true);
    },
    [api, project.name, run, task],
  );

  const choose = useCallback(
    (index: number) => {
      const label = labels[index];
      if (!label || !task?.item) return;
      if (!ner) return submit({ label });
      const offsets = textBox.current ? offsetsOf(textBox.current) : null;
      if (!offsets) return;
      setSpans((held) => addSpan(held, task.item!.text, offsets[0], offsets[1], label));
      window.getSelection()?.removeAllRanges();
    },
    [labels, ner, submit, task],
  );

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      if (busy || event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
      const action = keyAction(event.key);
      if (!action) return;
      event.preventDefault();
      if (action.kind === "choose") choose(action.index);
      else if (action.kind === "accept" && task) {
        const answer = acceptAnswer(project, task, spans);
        if (answer) submit(answer);
      } else if (action.kind === "skip" && task?.item) {
        const id = task.item.id;
        void run(() => api.annotationSkip(project.name, id), false);
      } else if (action.kind === "undo") void run(() => api.annotationUndo(project.name), false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [api, busy, choose, project, run, spans, submit, task]);

  if (!task) return <section className="annotate-item">{error ?? "Loading…"}</section>;
  if (!task.item)
    return (
      <section className="annotate-item" data-testid="done">
        <p>Nothing left to label here for now. A new round will queue more rows.</p>
        <button onClick={() => void run(() => api.annotationNext(project.name), false)}>Check again</button>
        <button data-testid="undo" onClick={() => void run(() => api.annotationUndo(project.name), false)}>
          Undo (U)
        </button>
      </section>
    );
  const pre = task.prelabel;
  const by = pre ? `Model ${pre.model}${pre.model_version ? ` v${pre.model_version}` : ""}` : "";
  return (
    <section className="annotate-item" data-testid="annotate-item" data-item={task.item.id}>
      {task.undone && (
        <p className="status" data-testid="undone">
          {undoneNote(task)}
        </p>
      )}
      <AnnotateText
        text={task.item.text}
        spans={spans}
        types={labels}
        boxRef={textBox}
        onRemove={ner ? (span) => setSpans((held) => removeSpan(held, span.start, span.end)) : undefined}
      />
      <p className="annotate-prelabel" data-testid="prelabel">
        {pre
          ? ner
            ? `${by}: ${pre.entities?.length ?? 0} entities pre-marked`
            : `${by} says ${pre.label ?? "–"}${
                pre.confidence === null ? "" : ` (${Math.round(pre.confidence * 100)}%)`
              }`
          : "No pre-label for this row."}
      </p>
      <div className="annotate-labels">
        {labels.slice(0, 9).map((label, i) => (
          <button
            key={label}
            data-testid={`label-${i + 1}`}
            className={
              !ner && (task.answer?.label ?? pre?.label) === label ? "annotate-choice suggested" : "annotate-choice"
            }
            disabled={busy}
            onMouseDown={(e) => e.preventDefault() /* keep the text selection for NER */}
            onClick={() => choose(i)}
          >
            <kbd>{i + 1}</kbd> {label}
          </button>
        ))}
      </div>
      <div className="annotate-actions">
        <button data-testid="accept" disabled={busy} onClick={() => {
          const answer = acceptAnswer(project, task, spans);
          if (answer) submit(answer);
        }}>
          <kbd>Enter</kbd> {ner ? "Submit spans" : "Accept pre-label"}
        </button>
        <button data-testid="skip" disabled={busy} onClick={() => void run(() => api.annotationSkip(project.name, task.item!.id), false)}>
          <kbd>S</kbd> Skip
        </button>
        <button data-testid="undo" disabled={busy} onClick={() => void run(() => api.annotationUndo(project.name), false)}>
          <kbd>U</kbd> Undo
        </button>
      </div>
      {ner && <p className="annotate-hint">Select text and press a type's number to mark it; click a span to remove it.</p>}
      {error && (
        <p className="status error" data-testid="status">
          {error}
        </p>
      )}
    </section>
  );
}
