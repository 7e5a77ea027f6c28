// The API client: every call sends the bearer token and unwraps the envelope; an error carries its message.
import type { AnnotationProject, AnnotationStatus, Answer, Disagreement, LabelTask } from "./annotate";
import type {
  CheckError,
  Job,
  Schedule,
  StageInfo,
  UploadedFile,
  WorkflowDiff,
  WorkflowFile,
  WorkflowRun,
  WorkflowSummary,
  WorkflowVersion,
} from "./types";

/** What a call was doing, in words, for its error line: "saving the workflow", "the dry run". */
const ACTIONS: [RegExp, string][] = [
  [/^GET \/stages$/, "loading the stage palette"],
  [/^GET \/workflows$/, "listing the saved workflows"],
  [/^POST \/workflows\/check$/, "the dry run"],
  [/^GET \/workflows\/[^/]+\/versions$/, "listing the versions"],
  [/^GET \/workflows\/[^/]+\/diff/, "comparing the versions"],
  [/^POST \/workflows\/[^/]+\/runs$/, "starting the run"],
  [/^\w+ \/workflows\/[^/]+\/schedule$/, "the schedule"],
  [/^GET \/workflows\/[^/]+\/export/, "exporting the code"],
  [/^GET \/workflows\/[^/]+/, "opening the workflow"],
  [/^PUT \/workflows\/[^/]+$/, "saving the workflow"],
  [/^POST \/workflow-runs\/[^/]+\/retry$/, "re-running"],
  [/^GET \/workflow-runs\//, "following the run"],
  [/^\w+ \/annotation\//, "the annotation project"],
  [/^PUT \/data-files\//, "uploading the file"],
];

export function actionOf(method: string, path: string): string {
  const call = `${method} ${path}`;
  return ACTIONS.find(([pattern]) => pattern.test(call))?.[1] ?? call;
}

/** The reason of a 401 (`data.reason`: expired, missing, invalid; older servers say it in the message). */
function authReason(data: unknown, detail: string): string {
  const reason = (data as { reason?: unknown } | null)?.reason;
  if (typeof reason === "string") return reason;
  return /expired/i.test(detail) ? "expired" : "invalid";
}

const capital = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

export const SIGN_IN_EXPIRED = "Your sign-in has expired: sign in again with a new token.";

interface Said {
  what: string;
  said: string;
  status: number;
  data: unknown;
  retryAfter: string | null;
}

/** The error line by HTTP status (0: the call got no answer at all). */
const LINES: Record<number, (e: Said) => string> = {
  0: ({ what, said }) =>
    `${what} failed: the API does not answer (${said}); check that \`openautoglm serve\` runs and reload.`,
  400: ({ what, said }) => `${what} refused: ${said}.`,
  401: ({ said, data }) =>
    authReason(data, said) === "expired"
      ? SIGN_IN_EXPIRED
      : `The API refused your sign-in (${said}): sign in again with a valid token.`,
  403: ({ what, said }) => `${what} is not allowed for your roles (${said}): ask an admin for the operator role.`,
  404: ({ what, said }) => `${what} failed: ${said || "not found"} (it may have been removed; reload the list).`,
  409: ({ what, said }) =>
    `${what} failed: ${said || "someone else changed it at the same moment"}; reload and try again.`,
  413: ({ what, said }) => `${what} failed: too large for the API (${said}); make it smaller.`,
  422: ({ what, said }) => `${what} refused: ${said}.`,
  429: ({ what, retryAfter }) =>
    `${what} failed: too many requests; wait ${retryAfter ? `${retryAfter} s` : "a moment"} and try again.`,
  502: ({ what, said }) => `${what} failed: the model did not answer (${said}); try again later.`,
  503: ({ what, said }) => `${what} failed: ${said || "a service the API needs is down"}; try again in a moment.`,
  504: ({ what, said }) => `${what} failed: the model did not answer (${said}); try again later.`,
};

const SERVER_FAILED = ({ what, said, status }: Said) =>
  `${what} failed on the server (${said || `HTTP ${status}`}); try again, or ask an admin to read the API log.`;
const OTHER = ({ what, said, status }: Said) => `${what} failed: ${said || `HTTP ${status}`}.`;

/** The one line a user reads for an API error: what failed, why, and what to do (the one place errors map). */
export function readableError(
  method: string,
  path: string,
  status: number,
  detail: string,
  data: unknown = null,
  retryAfter: string | null = null,
): string {
  const line = LINES[status] ?? (status >= 500 ? SERVER_FAILED : OTHER);
  return line({
    what: capital(actionOf(method, path)),
    said: detail.trim().replace(/\.$/, ""),
    status,
    data,
    retryAfter,
  });
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly data: unknown,
    /** The server's own message (or the transport's), before it was put in words for the page. */
    readonly detail: string = message,
  ) {
    super(message);
  }

  /** The token was refused (expired or invalid): the page goes back to the sign-in. */
  get unauthenticated(): boolean {
    return this.status === 401;
  }

  /** The per-node errors a refused save carries (`data.errors`, as the dry run's). */
  get nodeErrors(): CheckError[] {
    const errors = (this.data as { errors?: unknown } | null)?.errors;
    return Array.isArray(errors) ? errors.filter((e): e is CheckError => typeof e?.message === "string") : [];
  }
}

interface Envelope<T> {
  code: number;
  data: T;
  message: string;
}

export class Api {
  /** `onUnauthenticated` hears every 401 (an expired token): the page returns to the sign-in with its line. */
  constructor(
    private readonly token: string,
    private readonly onUnauthenticated?: (error: ApiError) => void,
  ) {}

  /** One API call: `body` goes as JSON, `raw` as it is with its content type (an uploaded file). */
  private async call<T>(method: string, path: string, body?: unknown, raw?: { data: Blob; type: string }): Promise<T> {
    let response: Response;
    const type = raw ? raw.type : body === undefined ? undefined : "application/json";
    try {
      response = await fetch(`/api/v1${path}`, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(type ? { "Content-Type": type } : {}) },
        body: raw ? raw.data : body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const detail = (e as Error).message || "network error";
      throw new ApiError(readableError(method, path, 0, detail), 0, null, detail);
    }
    let envelope: Envelope<T> | null = null;
    try {
      envelope = (await response.json()) as Envelope<T>;
    } catch {
      // not JSON: a proxy's error page; reported below with the HTTP status
    }
    if (!response.ok || !envelope || envelope.code !== 0) {
      const detail = envelope?.message ?? `HTTP ${response.status} ${response.statusText}`.trim();
      const data = envelope?.data ?? null;
      const line = readableError(method, path, response.status, detail, data, response.headers.get("Retry-After"));
      const error = new ApiError(line, response.status, data, detail);
      if (error.unauthenticated) this.onUnauthenticated?.(error);
      throw error;
    }
    return envelope.data;
  }

  stages = () => this.call<{ stages: StageInfo[] }>("GET", "/stages").then((d) => d.stages);
  workflows = () => this.call<{ workflows: WorkflowSummary[] }>("GET", "/workflows").then((d) => d.workflows);
  workflow = (name: string, version?: number) =>
    this.call<{ workflow: WorkflowFile; version: number }>(
      "GET",
      `/workflows/${encodeURIComponent(name)}${version === undefined ? "" : `?version=${version}`}`,
    );
  save = (file: WorkflowFile) =>
    this.call<{ name: string; version: number; unchanged: boolean }>(
      "PUT",
      `/workflows/${encodeURIComponent(file.name)}`,
      file,
    );
  versions = (name: string) =>
    this.call<{ versions: WorkflowVersion[] }>("GET", `/workflows/${encodeURIComponent(name)}/versions`).then(
      (d) => d.versions,
    );
  diff = (name: string, from: number, to: number) =>
    this.call<WorkflowDiff>("GET", `/workflows/${encodeURIComponent(name)}/diff?from=${from}&to=${to}`);
  check = (file: WorkflowFile) => this.call<{ ok: boolean; errors: CheckError[] }>("POST", "/workflows/check", file);
  run = (name: string, version: number) =>
    this.call<Job>("POST", `/workflows/${encodeURIComponent(name)}/runs`, { version });
  /** Re-run a failed run (same id: its finished nodes are reused); 409 if it is not final and failed. */
  retry = (id: string) => this.call<Job>("POST", `/workflow-runs/${encodeURIComponent(id)}/retry`);
  schedule = (name: string) => this.call<Schedule | null>("GET", `/workflows/${encodeURIComponent(name)}/schedule`);
  setSchedule = (name: string, cron: string, timezone: string) =>
    this.call<Schedule>("PUT", `/workflows/${encodeURIComponent(name)}/schedule`, { cron, timezone });
  unschedule = (name: string) => this.call<null>("DELETE", `/workflows/${encodeURIComponent(name)}/schedule`);
  runState = (id: string) => this.call<WorkflowRun>("GET", `/workflow-runs/${encodeURIComponent(id)}`);
  exportCode = (name: string, version?: number) =>
    this.call<{ filename: string; code: string }>(
      "GET",
      `/workflows/${encodeURIComponent(name)}/export${version === undefined ? "" : `?version=${version}`}`,
    );

  /** Upload a CSV/JSONL file into the data root (operators); its `path` goes into a load node's source. */
  uploadData = (name: string, data: Blob, type: string) =>
    this.call<UploadedFile>("PUT", `/data-files/${encodeURIComponent(name)}`, undefined, { data, type });

  // --- annotation (the Annotate page) ---
  annotationProjects = () =>
    this.call<{ projects: AnnotationProject[] }>("GET", "/annotation/projects").then((d) => d.projects);
  private project = (name: string) => `/annotation/projects/${encodeURIComponent(name)}`;
  annotationNext = (name: string) => this.call<LabelTask>("GET", `${this.project(name)}/next`);
  annotationAnswer = (name: string, itemId: number, answer: Answer, seconds: number) =>
    this.call<LabelTask>("POST", `${this.project(name)}/answers`, { item_id: itemId, ...answer, seconds });
  annotationSkip = (name: string, itemId: number) =>
    this.call<LabelTask>("POST", `${this.project(name)}/skip`, { item_id: itemId });
  annotationUndo = (name: string) => this.call<LabelTask>("POST", `${this.project(name)}/undo`);
  annotationStatus = (name: string) => this.call<AnnotationStatus>("GET", `${this.project(name)}/status`);
  annotationDisagreements = (name: string) =>
    this.call<{ disagreements: Disagreement[]; total: number }>("GET", `${this.project(name)}/disagreements`);
  annotationAdjudicate = (name: string, itemId: number, answer: Answer) =>
    this.call<LabelTask>("POST", `${this.project(name)}/adjudications`, { item_id: itemId, ...answer });
}
