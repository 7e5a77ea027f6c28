// A workflow's schedule as the canvas shows and edits it: a cron check before asking the server, the badge text.
import type { Schedule } from "../types";

const FIELD = /^[0-9A-Za-z*?/,#-]+$/;

/** Why `cron` is not a 5-field cron expression (minute hour day month weekday; 6 with seconds), or null. The
 * server checks it for real (422); this only catches a typo before asking. */
export function cronProblem(cron: string): string | null {
  const fields = cron.trim().split(/\s+/).filter(Boolean);
  if (fields.length === 0) return "a cron expression, e.g. 0 2 * * * (02:00 daily)";
  if (fields.length < 5 || fields.length > 6) {
    return `5 fields (minute hour day month weekday), not ${fields.length}`;
  }
  const bad = fields.find((f) => !FIELD.test(f));
  return bad ? `'${bad}' is not a cron field` : null;
}

/** The browser's IANA time zone, else UTC. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** The bar's compact badge of a schedule ("⏰ 0 2 * * * Asia/Shanghai"), or null when there is no cron. */
export function scheduleBadge(schedule: Schedule | null | undefined): string | null {
  if (!schedule?.cron) return null;
  const paused = schedule.active ? "" : " (paused)";
  return `⏰ ${schedule.cron} ${schedule.timezone ?? "UTC"}${paused}`;
}
