// A canvas node: its id, stage, typed ports as handles, and what a dry run or a run says about it.
import { Handle, type Node, type NodeProps, Position } from "@xyflow/react";
import { memo } from "react";
import type { StageNodeData } from "../graph/canvas";
import type { Rows } from "../graph/run";
import type { StagePort } from "../types";
import { useCatalogue } from "./catalogueContext";
import { portColour } from "./portColours";

/** What the canvas lays over a node's own data: a dry-run error, a run state and its rows. */
export type NodeOverlay = {
  error?: string;
  state?: string;
  /** The badge text: the state, or "cached" for a node a retried run reused. */
  badge?: string;
  rows?: Rows;
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
  const classes = ["stage-node", selected ? "selected" : "", data.error ? "faulty" : ""].join(" ");
  return (
    <div className={classes}>
      <header>
        <strong className="node-id">{id}</strong>
        <span className="node-stage">{type}</span>
        {data.state && (
          <span className={`badge state-${data.state}`} data-testid={`state-${id}`} data-state={data.state}>
            {data.badge ?? data.state}
          </span>
        )}
      </header>
      {!stage && <div className="node-error">unknown stage '{type}'</div>}
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
    </div>
  );
}

export const StageNode = memo(StageNodeView);
