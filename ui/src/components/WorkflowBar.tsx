// The top bar: the signed-in user, the open workflow and every action on it.
import { type ChangeEvent, useRef } from "react";
import type { Session } from "../auth";
import { scheduleBadge } from "../graph/schedule";
import type { Schedule, WorkflowSummary } from "../types";

export interface BarActions {
  open: (name: string) => void;
  save: () => void;
  dryRun: () => void;
  run: () => void;
  layout: () => void;
  undo: () => void;
  redo: () => void;
  versions: () => void;
  schedule: () => void;
  retry: () => void;
  exportFile: () => void;
  importFile: (file: File) => void;
  exportCode: () => void;
  signOut: () => void;
}

interface Props {
  session: Session;
  name: string;
  onName: (name: string) => void;
  description: string;
  onDescription: (description: string) => void;
  /** The canvas differs from the file as last opened or saved. */
  dirty: boolean;
  workflows: WorkflowSummary[];
  canUndo: boolean;
  canRedo: boolean;
  busy: boolean;
  runState: string | null;
  /** The run can be retried (it failed, crashed or was cancelled). */
  retriable: boolean;
  /** The run's flow run in the Prefect UI, when known. */
  runLink: string | null;
  /** The open workflow's name as saved (schedules need one), and its schedule. */
  savedName: string | null;
  schedule: Schedule | null;
  actions: BarActions;
}

export function WorkflowBar(props: Props) {
  const { session, name, onName, description, onDescription, dirty, workflows, busy, runState, actions } = props;
  const { canUndo, canRedo, retriable, runLink, savedName, schedule } = props;
  const badge = scheduleBadge(schedule);
  const scheduleOf = `${schedule?.deployment} runs v${schedule?.version ?? "?"}`;
  const upload = useRef<HTMLInputElement>(null);
  const edit = session.canEdit;
  const picked = (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (file) actions.importFile(file);
    event.target.value = "";
  };
  return (
    <header className="bar">
      <select
        data-testid="open-workflow"
        value=""
        onChange={(e) => e.target.value && actions.open(e.target.value)}
        aria-label="open a workflow"
      >
        <option value="">Open…</option>
        {workflows.map((w) => (
          <option key={w.name} value={w.name} title={w.description}>
            {w.name} (v{w.version})
          </option>
        ))}
      </select>
      <input
        data-testid="workflow-name"
        placeholder="workflow-name"
        value={name}
        onChange={(e) => onName(e.target.value)}
        disabled={!edit}
      />
      <input
        data-testid="workflow-description"
        className="description-input"
        placeholder="description"
        value={description}
        onChange={(e) => onDescription(e.target.value)}
        disabled={!edit}
      />
      <button data-testid="save" onClick={actions.save} disabled={!edit || busy}>
        Save
      </button>
      {dirty && (
        <span className="dirty" data-testid="dirty" title="changes not saved">
          unsaved
        </span>
      )}
      <button data-testid="dry-run" onClick={actions.dryRun} disabled={!edit || busy}>
        Dry run
      </button>
      <button data-testid="run" onClick={actions.run} disabled={!edit || busy}>
        Run
      </button>
      {runState && (
        <span className={`badge state-${runState}`} data-testid="run-state">
          {runState}
        </span>
      )}
      {retriable && edit && (
        <button data-testid="retry" onClick={actions.retry} disabled={busy} title="re-run; finished nodes are reused">
          Retry
        </button>
      )}
      {runLink && (
        <a
          className="run-link"
          data-testid="link-prefect-run"
          href={runLink}
          target="_blank"
          rel="noopener"
          title="the flow run in Prefect"
          aria-label="the flow run in Prefect"
        >
          ↗
        </a>
      )}
      <button
        data-testid="schedule"
        onClick={actions.schedule}
        disabled={!savedName}
        title={!savedName ? "save the workflow first" : badge ? `${badge}: ${scheduleOf}` : "run on a cron"}
      >
        {badge ? (
          <span className="schedule-badge" data-testid="schedule-badge">
            {badge}
          </span>
        ) : (
          "Schedule"
        )}
      </button>
      <span className="sep" />
      <button data-testid="layout" onClick={actions.layout} disabled={!edit}>
        Layout
      </button>
      <button data-testid="undo" onClick={actions.undo} disabled={!edit || !canUndo} title="Ctrl+Z">
        Undo
      </button>
      <button data-testid="redo" onClick={actions.redo} disabled={!edit || !canRedo} title="Ctrl+Shift+Z">
        Redo
      </button>
      <span className="sep" />
      <button data-testid="versions" onClick={actions.versions} disabled={!name}>
        Versions
      </button>
      <button data-testid="export" onClick={actions.exportFile}>
        Export
      </button>
      <button data-testid="import" onClick={() => upload.current?.click()} disabled={!edit}>
        Import
      </button>
      <input
        ref={upload}
        type="file"
        accept="application/json,.json"
        hidden
        onChange={picked}
        data-testid="import-file"
      />
      <button data-testid="export-code" onClick={actions.exportCode} disabled={!name || busy}>
        Export code
      </button>
      <span className="user" data-testid="user">
        {session.user} · {session.roles.join(", ") || "no role"}
      </span>
      <button data-testid="sign-out" onClick={actions.signOut}>
        Sign out
      </button>
    </header>
  );
}
