// The selected node: its id (editable), its parameter form (@rjsf on the stage's params_schema), a dry run's
// message and, once the node ran, its summary.
import Form from "@rjsf/core";
import type { RJSFSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import { useEffect, useMemo, useState } from "react";
import type { CanvasNode } from "../graph/canvas";
import { isValidNodeId } from "../graph/ids";
import { cells, confusionMatrices, type Confusion } from "../graph/confusion";
import { formSchema } from "../graph/schema";
import { nodeBadge, previewRows, type Rows } from "../graph/run";
import type { NodeRun, Params, StageInfo } from "../types";

interface Props {
  node: CanvasNode;
  stage: StageInfo | undefined;
  canEdit: boolean;
  error?: string;
  run?: NodeRun;
  rows?: Rows;
  taken: ReadonlySet<string>;
  onRename: (from: string, to: string) => void;
  onParams: (id: string, params: Params) => void;
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

function Preview({ run, rows }: { run: NodeRun; rows?: Rows }) {
  const { preview: _, ...summary } = run.summary ?? {};
  return (
    <section className="preview" data-testid="preview">
      <h3>Result: {nodeBadge(run)}</h3>
      {rows && (
        <p>
          rows in {rows.in ?? "–"} · out {rows.out ?? "–"}
        </p>
      )}
      {Object.entries(previewRows(run.summary)).map(([port, first]) => (
        <RowsTable key={port} port={port} rows={first} />
      ))}
      {Object.entries(confusionMatrices(run.summary)).map(([port, confusion]) => (
        <ConfusionTable key={port} port={port} confusion={confusion} />
      ))}
      <pre>{JSON.stringify(summary, null, 2)}</pre>
    </section>
  );
}

export function SidePanel({ node, stage, canEdit, error, run, rows, taken, onRename, onParams, onClose }: Props) {
  const schema = useMemo(() => formSchema(stage?.params_schema ?? {}) as RJSFSchema, [stage]);
  return (
    <aside className="side-panel" data-testid="side-panel">
      <button className="close" onClick={onClose} aria-label="close">
        ×
      </button>
      <h2>{node.type}</h2>
      {stage && <p className="description">{stage.description}</p>}
      <NodeIdField id={node.id} taken={taken} canEdit={canEdit} onRename={onRename} />
      {error && (
        <p className="field-error" data-testid="node-error">
          {error}
        </p>
      )}
      {run && <RunLinks run={run} />}
      {run?.summary !== undefined && run.summary !== null && <Preview run={run} rows={rows} />}
      {stage && (
        <Form
          key={node.id}
          schema={schema}
          formData={node.data.params}
          validator={validator}
          uiSchema={NO_SUBMIT}
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
