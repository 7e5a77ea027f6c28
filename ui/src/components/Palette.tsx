// The stage catalogue: drag a stage onto the canvas (or double-click it) to add a node.
import type { DragEvent } from "react";
import type { StageInfo } from "../types";
import { portColour } from "./portColours";

export const STAGE_MIME = "application/x-openautoglm-stage";

interface Props {
  stages: StageInfo[];
  enabled: boolean;
  onAdd: (stage: string) => void;
}

export function Palette({ stages, enabled, onAdd }: Props) {
  const start = (event: DragEvent, stage: string) => {
    event.dataTransfer.setData(STAGE_MIME, stage);
    event.dataTransfer.effectAllowed = "copy";
  };
  return (
    <aside className="palette">
      <h2>Stages</h2>
      {stages.map((s) => (
        <div
          key={s.name}
          className={`palette-item ${enabled ? "" : "disabled"}`}
          data-testid={`palette-${s.name}`}
          draggable={enabled}
          onDragStart={(e) => start(e, s.name)}
          onDoubleClick={() => enabled && onAdd(s.name)}
          title={s.description}
        >
          <div className="palette-name">{s.name}</div>
          <div className="palette-ports">
            {[...s.inputs, ...s.outputs].map((p, i) => (
              <span
                key={`${i < s.inputs.length ? "in" : "out"}-${p.name}`}
                className="chip"
                style={{ borderColor: portColour(p.type) }}
              >
                {i < s.inputs.length ? "→" : ""}
                {p.type}
                {i < s.inputs.length ? "" : "→"}
              </span>
            ))}
          </div>
        </div>
      ))}
    </aside>
  );
}
