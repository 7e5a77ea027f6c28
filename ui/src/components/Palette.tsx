// The stage catalogue, grouped by kind, with a search box: drag a stage onto the canvas (or double-click it) to
// add a node.
import { type DragEvent, useMemo, useState } from "react";
import { paletteGroups } from "../graph/palette";
import type { StageInfo } from "../types";
import { portColour } from "./portColours";

export const STAGE_MIME = "application/x-openautoglm-stage";

interface Props {
  stages: StageInfo[];
  enabled: boolean;
  onAdd: (stage: string) => void;
}

export function Palette({ stages, enabled, onAdd }: Props) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => paletteGroups(stages, query), [stages, query]);
  const start = (event: DragEvent, stage: string) => {
    event.dataTransfer.setData(STAGE_MIME, stage);
    event.dataTransfer.effectAllowed = "copy";
  };
  return (
    <aside className="palette">
      <h2>Stages</h2>
      <input
        className="palette-search"
        type="search"
        placeholder="Search stages…"
        aria-label="search stages"
        data-testid="palette-search"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      {groups.length === 0 && stages.length > 0 && <p className="palette-none">No stage matches “{query}”.</p>}
      {groups.map(({ kind, stages: members }) => (
        <section key={kind.name} className="palette-group" data-testid={`palette-group-${kind.name}`}>
          <h3>
            <span className="node-icon" aria-hidden>
              {kind.icon}
            </span>{" "}
            {kind.name}
          </h3>
          {members.map((s) => (
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
              <div className="palette-about">{s.description}</div>
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
        </section>
      ))}
    </aside>
  );
}
