// A workflow's schedule: the current one (GET .../schedule), and for operators a cron and time zone to set
// (PUT, after saving a dirty canvas) or the schedule to remove (DELETE).
import { useState } from "react";
import { browserTimeZone, cronProblem, scheduleBadge } from "../graph/schedule";
import type { Schedule } from "../types";
import { Dialog } from "./Dialog";

interface Props {
  name: string;
  schedule: Schedule | null;
  canEdit: boolean;
  busy: boolean;
  /** The last refusal (the server's 422 message), shown in the dialog. */
  error: string | null;
  onSet: (cron: string, timezone: string) => void;
  onRemove: () => void;
  onClose: () => void;
}

export function ScheduleDialog({ name, schedule, canEdit, busy, error, onSet, onRemove, onClose }: Props) {
  const [cron, setCron] = useState(schedule?.cron ?? "");
  const [timezone, setTimezone] = useState(schedule?.timezone ?? browserTimeZone());
  const problem = cron.trim() ? cronProblem(cron) : null;
  const zone = timezone.trim() || "UTC";
  return (
    <Dialog title={`Schedule of ${name}`} onClose={onClose}>
      <p data-testid="schedule-current">
        {schedule?.cron
          ? `${scheduleBadge(schedule)} · v${schedule.version ?? "?"} · ${schedule.deployment}`
          : "not scheduled"}
      </p>
      {canEdit && (
        <div className="schedule-form">
          <label className="field">
            Cron
            <input
              data-testid="schedule-cron"
              placeholder="0 2 * * *"
              value={cron}
              aria-invalid={problem !== null}
              onChange={(e) => setCron(e.target.value)}
              onKeyDown={(e) => e.key === "Enter" && !problem && cron.trim() && onSet(cron.trim(), zone)}
            />
            {problem && <span className="field-error">{problem}</span>}
          </label>
          <label className="field">
            Time zone
            <input
              data-testid="schedule-timezone"
              placeholder="UTC"
              value={timezone}
              onChange={(e) => setTimezone(e.target.value)}
            />
          </label>
          <div className="schedule-actions">
            <button
              data-testid="schedule-set"
              onClick={() => onSet(cron.trim(), zone)}
              disabled={busy || !cron.trim() || problem !== null}
            >
              Set
            </button>
            <button data-testid="schedule-remove" onClick={onRemove} disabled={busy}>
              Remove
            </button>
          </div>
        </div>
      )}
      {error && (
        <p className="field-error" data-testid="schedule-error">
          {error}
        </p>
      )}
    </Dialog>
  );
}
