// The Annotate page: the projects the signed-in user may work on; a labelling view (annotators, admins) and a
// review view (reviewers, admins), beside the project's progress, agreement, model and learning curve.
import "../annotate.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { AnnotationProject, AnnotationStatus } from "../annotate";
import { Api } from "../api";
import type { Session } from "../auth";
import { AnnotateLabel } from "./AnnotateLabel";
import { AnnotateReview } from "./AnnotateReview";
import { AnnotateStats } from "./AnnotateStats";

type View = "label" | "review";

export function Annotate({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const api = useMemo(() => new Api(session.token), [session.token]);
  const [projects, setProjects] = useState<AnnotationProject[] | null>(null);
  const [name, setName] = useState<string | null>(null);
  const [view, setView] = useState<View>("label");
  const [status, setStatus] = useState<AnnotationStatus | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .annotationProjects()
      .then((found) => {
        setProjects(found);
        setName((held) => held ?? found[0]?.name ?? null);
      })
      .catch((e: Error) => setError(e.message));
  }, [api]);

  const project = projects?.find((p) => p.name === name) ?? null;
  const canLabel = !!project?.roles.some((r) => r === "annotator" || r === "admin");
  const canReview = !!project?.roles.some((r) => r === "reviewer" || r === "admin");
  const shown: View = view === "review" && canReview ? "review" : canLabel ? "label" : "review";

  const current = useRef(name);
  current.current = name;
  const refresh = useCallback(() => {
    if (!name) return;
    api
      .annotationStatus(name)
      .then((found) => {
        if (current.current === name) setStatus(found); // a late answer for the project left behind is dropped
      })
      .catch((e: Error) => setError(e.message));
  }, [api, name]);
  useEffect(() => {
    setStatus(null);
    refresh();
    const timer = window.setInterval(refresh, 5000); // kappa, the model and the curve move as others label
    return () => window.clearInterval(timer);
  }, [refresh]);

  const canvas = session.roles.some((r) => r === "viewer" || r === "operator" || r === "admin");
  return (
    <div className="workspace annotate">
      <header className="bar">
        <strong>Annotate</strong>
        <select
          data-testid="project"
          value={name ?? ""}
          onChange={(e) => setName(e.target.value)}
          disabled={!projects?.length}
        >
          {(projects ?? []).map((p) => (
            <option key={p.name} value={p.name}>
              {p.name} ({p.task_type === "ner" ? "NER" : "labels"})
            </option>
          ))}
        </select>
        <span className="sep" />
        {canLabel && canReview && (
          <button data-testid="view-label" disabled={shown === "label"} onClick={() => setView("label")}>
            Label
          </button>
        )}
        {canLabel && canReview && (
          <button data-testid="view-review" disabled={shown === "review"} onClick={() => setView("review")}>
            Review{status?.disagreements ? ` (${status.disagreements})` : ""}
          </button>
        )}
        {canvas && (
          <a href="#/" data-testid="to-canvas">
            Canvas
          </a>
        )}
        <span className="user" data-testid="user">
          {session.user} ({session.roles.join(", ") || "no role"})
        </span>
        <button data-testid="sign-out" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {error && (
        <p className="status error" data-testid="status">
          {error}
        </p>
      )}
      {projects && !projects.length && (
        <p className="annotate-empty" data-testid="no-projects">
          No annotation project is open to you yet: ask an admin to grant you one.
        </p>
      )}
      {project && (
        <div className="annotate-main">
          <div className="annotate-work">
            {project.guidelines && <details className="annotate-guidelines"><summary>Guidelines</summary>{project.guidelines}</details>}
            {shown === "label" ? (
              <AnnotateLabel key={project.name} api={api} project={project} onAnswered={refresh} />
            ) : (
              <AnnotateReview key={project.name} api={api} project={project} onSettled={refresh} />
            )}
          </div>
          <AnnotateStats status={status} />
        </div>
      )}
    </div>
  );
}
