// The selected node: its id (editable), its parameter form (@rjsf on the stage's params_schema, in words), a dry
// run's message, why it failed and what to do, and once the node ran, its metrics, first rows and log lines.
import Form from "@rjsf/core";
import type { RJSFSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import { useEffect, useMemo, useState } from "react";
import type { CanvasNode } from "../graph/canvas";
import { isValidNodeId } from "../graph/ids";
import { cells, confusionMatrices, type Confusion } from "../graph/confusion";
import { withoutNulls, wordedSchema } from "../graph/form";
import { type MetricsView, metricsOf } from "../graph/metrics";
import { type Failure, nodeBadge, outputSummaries, previewRows, type Rows } from "../graph/run";
import { formSchema } from "../graph/schema";
import { readsFileSource } from "../graph/upload";
import { humanise } from "../graph/words";
import type { LogLine, NodeRun, Params, StageInfo } from "../types";
import { FORM_TEMPLATES } from "./FormTemplates";

interface Props {
  node: CanvasNode;
  stage: StageInfo | undefined;
  canEdit: boolean;
  error?: string;
  run?: NodeRun;
  /** Why the node failed in its run, and what to do (null when it did not fail). */
  failure?: Failure | null;
  rows?: Rows;
  taken: ReadonlySet<string>;
  onRename: (from: string, to: string) => void;
  onParams: (id: string, params: Params) => void;
  /** Upload a data file for this node's source (stages that read a file; operators). */
  onUpload?: (id: string, file: File) => void;
  onClose: () => void;
}

const NO_SUBMIT = { "ui:submitButtonOptions": { norender: true } };
// pydantic writes `format: "path"` for file paths; any string is one.
const validator = customizeValidator({ customFormats: { path: /.*/ } });

function NodeIdField({ id, taken, canEdit, onRename }: Pick<Props, "taken" | "canEdit" | "onRename"> & { id: string }) {
  const [draft, setDraft] = useState(id);
  useEffect(() => setDraft(id), [id]);
  const problem =
    draft === id
      ? null
      : !isValidNodeId(draft)
        ? "a letter, then letters, digits, _ or - (64 at most)"
        : taken.has(draft)
          ? `'${draft}' is taken`
          : null;
  const apply = () => {
    if (draft !== id && !problem) onRename(id, draft);
  };
  return (
    <label className="field">
      Node id
      <input
        data-testid="node-id"
        value={draft}
        disabled={!canEdit}
        aria-invalid={problem !== null}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={apply}
        onKeyDown={(e) => e.key === "Enter" && apply()}
      />
      {problem && <span className="field-error">{problem}</span>}
    </label>
  );
}

function RowsTable({ port, rows }: { port: string; rows: Record<string, unknown>[] }) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return (
    <table className="rows-table">
      <caption>{port}: first rows</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={i}>
            {columns.map((c) => (
              <td key={c}>{typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c] ?? "")}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ConfusionTable({ port, confusion }: { port: string; confusion: Confusion }) {
  const shaded = cells(confusion);
  return (
    <table className="rows-table confusion" data-testid="confusion-matrix">
      <caption>{port}: confusion matrix (rows gold, columns predicted)</caption>
      <thead>
        <tr>
          <th />
          {confusion.columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {shaded.map((row, i) => (
          <tr key={confusion.labels[i]}>
            <th>{confusion.labels[i]}</th>
            {row.map((cell, j) => (
              <td
                key={confusion.columns[j]}
                className={cell.diagonal ? "diagonal" : undefined}
                style={{ background: `rgba(${cell.diagonal ? "22, 163, 74" : "220, 38, 38"}, ${cell.share * 0.6})` }}
              >
                {cell.count}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RunLinks({ run }: { run: NodeRun }) {
  if (!run.prefect_url && !run.mlflow_url) return null;
  return (
    <p className="run-links">
      {run.prefect_url && (
        <a data-testid="link-prefect" href={run.prefect_url} target="_blank" rel="noopener">
          Prefect task run ↗
        </a>
      )}
      {run.mlflow_url && (
        <a data-testid="link-mlflow" href={run.mlflow_url} target="_blank" rel="noopener">
          MLflow run ↗
        </a>
      )}
    </p>
  );
}

function MetricsTable({ port, view }: { port: string; view: MetricsView }) {
  return (
    <div className="metrics" data-testid={`metrics-${port}`}>
      {view.figures.length > 0 && (
        <table className="rows-table metrics-table" data-testid="metrics-table">
          <caption>{humanise(port)}</caption>
          <tbody>
            {view.figures.map((f) => (
              <tr key={f.name}>
                <th scope="row">{f.label}</th>
                <td>{f.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view.charts.map((chart) => (
        <figure key={chart.name} className="bars" data-testid={`chart-${chart.name}`}>
          <figcaption>{chart.title}</figcaption>
          {chart.bars.map((b) => (
            <div key={b.label} className="bar-row">
              <span className="bar-label">{b.label}</span>
              <span className="bar-track">
                <span className="bar-fill" style={{ width: `${(100 * Math.max(0, b.value)) / chart.max}%` }} />
              </span>
              <span className="bar-value">{b.text}</span>
            </div>
          ))}
        </figure>
      ))}
      {view.tables.map((t) => (
        <table key={t.name} className="rows-table">
          <caption>{t.title}</caption>
          <thead>
            <tr>
              <th />
              {t.columns.map((c) => (
                <th key={c}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {t.rows.map((r) => (
              <tr key={r.label}>
                <th scope="row">{r.label}</th>
                {r.cells.map((c, i) => (
                  <td key={i}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </div>
  );
}

function FailurePanel({ failure }: { failure: Failure }) {
  return (
    <section className="failure" data-testid="node-failure" role="alert">
      <h3>This node failed</h3>
      <p data-testid="node-failure-message">{failure.message}</p>
      {failure.whatToDo && (
        <p className="what-to-do" data-testid="node-failure-what-to-do">
          <strong>What to do:</strong> {failure.whatToDo}
        </p>
      )}
    </section>
  );
}

function Logs({ lines }: { lines: LogLine[] }) {
  return (
    <details className="logs" data-testid="node-logs" open>
      <summary>Log ({lines.length} lines)</summary>
      <pre>
        {lines.map((l, i) => (
          <div key={i} className={`log-${l.level.toLowerCase()}`}>
            {l.time.slice(11, 19)} {l.level} {l.message}
          </div>
        ))}
      </pre>
    </details>
  );
}

function Preview({ run, rows, stage }: { run: NodeRun; rows?: Rows; stage?: StageInfo }) {
  const { preview: _, ...summary } = run.summary ?? {};
  const metrics = metricsOf(outputSummaries(run.summary), stage?.outputs ?? []);
  return (
    <section className="preview" data-testid="preview">
      <h3>Result: {nodeBadge(run)}</h3>
      {rows && (
        <p>
          rows in {rows.in ?? "–"} · out {rows.out ?? "–"}
        </p>
      )}
      {Object.entries(metrics).map(([port, view]) => (
        <MetricsTable key={port} port={port} view={view} />
      ))}
      {Object.entries(confusionMatrices(run.summary)).map(([port, confusion]) => (
        <ConfusionTable key={port} port={port} confusion={confusion} />
      ))}
      {Object.entries(previewRows(run.summary)).map(([port, first]) => (
        <RowsTable key={port} port={port} rows={first} />
      ))}
      <details className="raw">
        <summary>Everything the node reported</summary>
        <pre>{JSON.stringify(summary, null, 2)}</pre>
      </details>
    </section>
  );
}

function UploadField({ onUpload }: { onUpload: (file: File) => void }) {
  return (
    <label className="field upload">
      Upload a data file (CSV or JSONL) into the data root; the source then reads it
      <input
        type="file"
        accept=".csv,.jsonl"
        data-testid="upload-file"
        onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) onUpload(file);
          e.target.value = "";
        }}
      />
    </label>
  );
}

export function SidePanel({
  node,
  stage,
  canEdit,
  error,
  run,
  failure,
  rows,
  taken,
  onRename,
  onParams,
  onUpload,
  onClose,
}: Props) {
  const schema = useMemo(() => wordedSchema(formSchema(stage?.params_schema ?? {})) as RJSFSchema, [stage]);
  const formData = useMemo(() => withoutNulls(node.data.params), [node.data.params]);
  return (
    <aside className="side-panel" data-testid="side-panel">
      <button className="close" onClick={onClose} aria-label="close">
        ×
      </button>
      <h2>
        {node.id}
        {node.id !== node.type && <span className="node-stage"> · {node.type}</span>}
      </h2>
      {stage && <p className="description">{stage.description}</p>}
      <NodeIdField id={node.id} taken={taken} canEdit={canEdit} onRename={onRename} />
      {error && (
        <p className="field-error" data-testid="node-error">
          {error}
        </p>
      )}
      {failure && <FailurePanel failure={failure} />}
      {run && <RunLinks run={run} />}
      {run?.summary !== undefined && run.summary !== null && <Preview run={run} rows={rows} stage={stage} />}
      {run?.logs && run.logs.length > 0 && <Logs lines={run.logs} />}
      {stage && canEdit && onUpload && readsFileSource(stage.params_schema) && (
        <UploadField onUpload={(file) => onUpload(node.id, file)} />
      )}
      {stage && (
        <Form
          key={node.id}
          schema={schema}
          formData={formData}
          validator={validator}
          uiSchema={NO_SUBMIT}
          templates={FORM_TEMPLATES}
          disabled={!canEdit}
          liveValidate
          showErrorList={false}
          // A change without a field id is the form filling in the schema's defaults on mount: not an edit (the
          // server applies the same defaults), so a click on a node changes nothing.
          onChange={(e, field) => field !== undefined && onParams(node.id, (e.formData ?? {}) as Params)}
        />
      )}
    </aside>
  );
}
