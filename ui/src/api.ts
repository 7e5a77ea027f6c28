// The API client: every call sends the bearer token and unwraps the envelope; an error carries its message.
import type {
  AnnotationProject,
  AnnotationStatus,
  Answer,
  Disagreement,
  LabelTask,
} from "./annotate";
import type {
  CheckError,
  Job,
  Schedule,
  StageInfo,
  WorkflowDiff,
  WorkflowFile,
  WorkflowRun,
  WorkflowSummary,
  WorkflowVersion,
} from "./types";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly data: unknown,
  ) {
    super(message);
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
  constructor(private readonly token: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let envelope: Envelope<T> | null = null;
    try {
      envelope = (await response.json()) as Envelope<T>;
    } catch {
      // not JSON: a proxy's error page; reported below with the HTTP status
    }
    if (!response.ok || !envelope || envelope.code !== 0) {
      const message = envelope?.message ?? `HTTP ${response.status} ${response.statusText}`;
      throw new ApiError(`${method} ${path}: ${message}`, response.status, envelope?.data ?? null);
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
