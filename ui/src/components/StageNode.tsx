// A canvas node: its id, stage and kind, its key settings, typed ports as handles, and what a dry run or a run
// says about it (state, rows in and out, why it failed).
import { Handle, type Node, type NodeProps, Position } from "@xyflow/react";
import { memo, useMemo } from "react";
import type { StageNodeData } from "../graph/canvas";
import { keySettings } from "../graph/form";
import { kindOf } from "../graph/palette";
import type { Rows } from "../graph/run";
import type { StagePort } from "../types";
import { useCatalogue } from "./catalogueContext";
import { portColour } from "./portColours";

/** What the canvas lays over a node's own data: a dry-run error, a run state, its rows and why it failed. */
export type NodeOverlay = {
  error?: string;
  state?: string;
  /** The badge text: the state, or "cached" for a node a retried run reused. */
  badge?: string;
  rows?: Rows;
  /** A failed node's error (its panel says what to do). */
  failure?: string;
};

export type ShownNode = Node<StageNodeData & NodeOverlay>;

function PortRow({ port, side }: { port: StagePort; side: "in" | "out" }) {
  const colour = portColour(port.type);
  return (
    <div className={`port port-${side}`} title={port.description}>
      <Handle
        type={side === "in" ? "target" : "source"}
        position={side === "in" ? Position.Left : Position.Right}
        id={port.name}
        style={{ background: colour, borderColor: colour }}
      />
      <span className="port-name">
        {port.name}
        {side === "in" && !port.required ? "?" : ""}
      </span>
      <span className="port-type" style={{ color: colour }}>
        {port.type}
      </span>
    </div>
  );
}

function StageNodeView({ id, type, data, selected }: NodeProps<ShownNode>) {
  const stage = useCatalogue().get(type);
  const settings = useMemo(() => (stage ? keySettings(data.params, stage.params_schema) : []), [data.params, stage]);
  const kind = stage ? kindOf(stage) : null;
  const faulty = data.error || data.failure;
  const classes = [
    "stage-node",
    selected ? "selected" : "",
    faulty ? "faulty" : "",
    data.state ? `run-${data.state}` : "",
  ];
  return (
    <div className={classes.join(" ")}>
      <header>
        {kind && (
          <span className="node-icon" title={kind.name} aria-hidden>
            {kind.icon}
          </span>
        )}
        <strong className="node-id">{id}</strong>
        {id !== type && <span className="node-stage">{type}</span>}
        {data.state && (
          <span className={`badge state-${data.state}`} data-testid={`state-${id}`} data-state={data.state}>
            {data.badge ?? data.state}
          </span>
        )}
      </header>
      {!stage && <div className="node-error">unknown stage '{type}'</div>}
      {settings.length > 0 && (
        <dl className="node-settings" data-testid={`settings-${id}`}>
          {settings.map((s) => (
            <div key={s.label}>
              <dt>{s.label}</dt>
              <dd title={s.value}>{s.value}</dd>
            </div>
          ))}
        </dl>
      )}
      <div className="ports">
        <div>
          {stage?.inputs.map((p) => (
            <PortRow key={p.name} port={p} side="in" />
          ))}
        </div>
        <div>
          {stage?.outputs.map((p) => (
            <PortRow key={p.name} port={p} side="out" />
          ))}
        </div>
      </div>
      {data.rows && (data.rows.in !== undefined || data.rows.out !== undefined) && (
        <footer className="rows">
          rows in {data.rows.in ?? "–"} · out {data.rows.out ?? "–"}
        </footer>
      )}
      {data.error && <div className="node-error">{data.error}</div>}
      {data.failure && !data.error && (
        <div className="node-error" title={data.failure}>
          {data.failure}
        </div>
      )}
    </div>
  );
}

export const StageNode = memo(StageNodeView);
