// The palette grouped by kind, with a search box: what a stage is for, read from its ports (or the `kind` the
// catalogue sends, when it sends one).
import type { StageInfo } from "../types";
import { humanise } from "./words";

export interface Kind {
  name: string;
  icon: string;
}

/** The kinds in the palette's order; the first whose rule a stage meets is its kind. */
const KINDS: { kind: Kind; is: (s: StageInfo) => boolean }[] = [
  { kind: { name: "Sources", icon: "⤓" }, is: (s) => s.inputs.length === 0 },
  { kind: { name: "Outputs", icon: "⤒" }, is: (s) => s.outputs.some((p) => p.type === "Files") },
  { kind: { name: "Graphs", icon: "◈" }, is: (s) => [...s.inputs, ...s.outputs].some((p) => p.type === "Graph") },
  { kind: { name: "Prompts", icon: "✎" }, is: (s) => s.outputs.some((p) => p.type === "Prompt") },
  {
    kind: { name: "Models and scores", icon: "◎" },
    is: (s) => s.outputs.some((p) => p.type === "Predictions" || p.type === "Metrics"),
  },
];
const OTHER: Kind = { name: "Data preparation", icon: "⚙" };
const ORDER = ["Sources", "Data preparation", "Models and scores", "Prompts", "Graphs", "Outputs"];

/** A stage's kind: the catalogue's `kind` when it sends one, else by its ports. */
export function kindOf(stage: StageInfo): Kind {
  const sent = (stage as StageInfo & { kind?: unknown }).kind;
  if (typeof sent === "string" && sent) {
    return (
      KINDS.find((k) => k.kind.name.toLowerCase() === sent.toLowerCase())?.kind ?? { name: humanise(sent), icon: "•" }
    );
  }
  return KINDS.find((k) => k.is(stage))?.kind ?? OTHER;
}

/** Whether a stage matches a search: every word of it is in the stage's name, description or port types. */
export function matches(stage: StageInfo, query: string): boolean {
  const text = [
    stage.name,
    humanise(stage.name),
    stage.description,
    ...[...stage.inputs, ...stage.outputs].map((p) => `${p.name} ${p.type}`),
  ]
    .join(" ")
    .toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((word) => text.includes(word));
}

export interface Group {
  kind: Kind;
  stages: StageInfo[];
}

/** The stages matching `query`, grouped by kind (known kinds in their order, then others by name), each group
 * sorted by name; groups left empty by the search are left out. */
export function paletteGroups(stages: readonly StageInfo[], query = ""): Group[] {
  const groups = new Map<string, Group>();
  for (const stage of stages) {
    if (!matches(stage, query)) continue;
    const kind = kindOf(stage);
    const group = groups.get(kind.name) ?? { kind, stages: [] };
    group.stages.push(stage);
    groups.set(kind.name, group);
  }
  const rank = (name: string) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
  return [...groups.values()]
    .sort((a, b) => rank(a.kind.name) - rank(b.kind.name) || a.kind.name.localeCompare(b.kind.name))
    .map((g) => ({ ...g, stages: [...g.stages].sort((a, b) => a.name.localeCompare(b.name)) }));
}
