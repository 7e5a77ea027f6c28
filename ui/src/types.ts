// Shapes of the API's data (docs/canvas-contract.md) and of the workflow file.

export interface StagePort {
  name: string;
  type: string;
  description: string;
  required: boolean;
}

export interface StageInfo {
  name: string;
  description: string;
  inputs: StagePort[];
  outputs: StagePort[];
  params_schema: Record<string, unknown>;
}

export type Params = Record<string, unknown>;

export interface WorkflowNode {
  id: string;
  stage: string;
  params: Params;
}

export interface WorkflowEdge {
  source: string; // node.port
  target: string; // node.port
}

export interface WorkflowGraph {
  nodes: WorkflowNode[];
  edges: WorkflowEdge[];
}

export type Layout = Record<string, { x: number; y: number }>;

export interface WorkflowFile {
  format: "openautoglm-workflow";
  version: number;
  app_version: string;
  name: string;
  description: string;
  graph: WorkflowGraph;
  layout: Layout;
}

export interface WorkflowSummary {
  name: string;
  description: string;
  version: number;
  hash: string;
  created: string;
  author: string;
}

export interface WorkflowVersion {
  version: number;
  hash: string;
  created: string;
  author: string;
}

export interface CheckError {
  node: string | null;
  message: string;
  /** What to do about it (one line), when the server knows. */
  hint?: string | null;
}

export interface ParamChange {
  path: string;
  before: unknown;
  after: unknown;
}

export interface WorkflowDiff {
  nodes_added: string[];
  nodes_removed: string[];
  nodes_changed: { id: string; stage: [string, string] | null; params: ParamChange[] }[];
  edges_added: string[];
  edges_removed: string[];
}

export interface Job {
  id: string;
  state: string | null;
  state_name: string | null;
  message: string | null;
}

/** A node's port summaries (a dataset's counts, a metrics dict, ...), by output port. */
export type NodeSummary = Record<string, unknown>;

export interface NodeRun {
  state: string;
  state_name: string | null;
  summary: NodeSummary | null;
  /** The node's task run in the Prefect UI, the run's MLflow run (null or absent when unknown). */
  prefect_url?: string | null;
  mlflow_url?: string | null;
  /** Why the node failed (null unless FAILED or CRASHED): one line, and what to do in the page's terms. */
  error?: NodeError | null;
  /** The node's last log lines (when the API sends them). */
  logs?: LogLine[] | null;
}

export interface NodeError {
  message: string;
  what_to_do: string | null;
}

export interface LogLine {
  time: string;
  level: string;
  message: string;
}

export interface RunLinks {
  prefect?: string | null;
  mlflow?: string | null;
}

export interface WorkflowRun {
  run: Job;
  nodes: Record<string, NodeRun>;
  links?: RunLinks;
}

/** A workflow's schedule: its own deployment of the pipeline flow with a cron (GET .../schedule; null if none). */
export interface Schedule {
  deployment: string;
  deployment_id: string;
  cron: string | null;
  timezone: string | null;
  active: boolean;
  version: number | null;
}

/** A data file uploaded into the data root (PUT /api/v1/data-files/{name}). */
export interface UploadedFile {
  path: string; // relative to the data root: what a load node's source.path takes
  bytes: number;
  rows: number;
  columns: string[];
  replaced: boolean;
}
