// The reviewer's queue: items whose annotators disagree, each with every answer; picking an answer (or a label)
// adjudicates the item (the adjudicated answer wins in the label snapshot).
import { useCallback, useEffect, useState } from "react";
import { type AnnotationProject, type Answer, type Disagreement, choices } from "../annotate";
import type { Api } from "../api";
import { AnnotateText } from "./AnnotateText";

export function AnnotateReview({
  api,
  project,
  onSettled,
}: {
  api: Api;
  project: AnnotationProject;
  onSettled: () => void;
}) {
  const [queue, setQueue] = useState<{ disagreements: Disagreement[]; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setQueue(await api.annotationDisagreements(project.name));
    } catch (e) {
      setError((e as Error).message);
    }
  }, [api, project.name]);
  useEffect(() => {
    void load();
  }, [load]);

  const settle = async (itemId: number, answer: Answer) => {
    setError(null);
    try {
      await api.annotationAdjudicate(project.name, itemId, answer);
      onSettled();
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (!queue) return <section className="annotate-review">{error ?? "Loading…"}</section>;
  const ner = project.task_type === "ner";
  const labels = choices(project);
  return (
    <section className="annotate-review" data-testid="review">
      <h2>
        To review: <span data-testid="review-total">{queue.total}</span>
      </h2>
      {queue.disagreements.length === 0 && <p>No disagreements waiting.</p>}
      {queue.disagreements.map((d) => (
        <article key={d.item.id} className="annotate-dispute" data-testid={`dispute-${d.item.id}`}>
          <AnnotateText text={d.item.text} spans={[]} types={labels} />
          <ul>
            {d.answers.map((a) => (
              <li key={a.annotator}>
                <strong>{a.annotator}</strong>:{" "}
                {ner ? (a.entities ?? []).map((e) => `${e.text}/${e.type}`).join(", ") || "no entities" : a.label}{" "}
                <button
                  data-testid={`take-${d.item.id}-${a.annotator}`}
                  onClick={() =>
                    void settle(d.item.id, ner ? { entities: a.entities ?? [] } : { label: a.label ?? "" })
                  }
                >
                  Take this answer
                </button>
              </li>
            ))}
          </ul>
          {!ner && (
            <div className="annotate-labels">
              {labels.map((label, i) => (
                <button
                  key={label}
                  data-testid={`adjudicate-${d.item.id}-${i + 1}`}
                  onClick={() => void settle(d.item.id, { label })}
                >
                  {label}
                </button>
              ))}
            </div>
          )}
        </article>
      ))}
      {error && (
        <p className="status error" data-testid="status">
          {error}
        </p>
      )}
    </section>
  );
}
