// Connection rules: an output feeds an input of the same type, an input is fed once, and no edge closes a cycle.
import type { StageInfo } from "../types";

/** An edge or a proposed connection, as React Flow writes both. */
export interface Link {
  source: string;
  sourceHandle?: string | null;
  target: string;
  targetHandle?: string | null;
}

/** A node as far as the rules care: its id and its stage (React Flow's `type`). */
export interface StagedNode {
  id: string;
  type?: string;
}

export type Catalogue = ReadonlyMap<string, StageInfo>;

export function catalogueOf(stages: StageInfo[]): Catalogue {
  return new Map(stages.map((s) => [s.name, s]));
}

export function portType(
  catalogue: Catalogue,
  stage: string | undefined,
  side: "inputs" | "outputs",
  port: string | null | undefined,
): string | undefined {
  return catalogue.get(stage ?? "")?.[side].find((p) => p.name === port)?.type;
}

export function isFed(edges: readonly Link[], target: string, targetHandle: string | null | undefined): boolean {
  return edges.some((e) => e.target === target && e.targetHandle === targetHandle);
}

/** Whether a path of edges leads from node `from` to node `to` (a node reaches itself). */
export function reaches(edges: readonly Link[], from: string, to: string): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const node = stack.pop()!;
    if (node === to) return true;
    if (seen.has(node)) continue;
    seen.add(node);
    stack.push(...(next.get(node) ?? []));
  }
  return false;
}

/** Why `link` cannot become an edge of the graph, or null when it can. */
export function connectionProblem(
  link: Link,
  nodes: readonly StagedNode[],
  edges: readonly Link[],
  catalogue: Catalogue,
): string | null {
  const stageOf = (id: string) => nodes.find((n) => n.id === id)?.type;
  const from = `${link.source}.${link.sourceHandle ?? ""}`;
  const to = `${link.target}.${link.targetHandle ?? ""}`;
  const out = portType(catalogue, stageOf(link.source), "outputs", link.sourceHandle);
  const inp = portType(catalogue, stageOf(link.target), "inputs", link.targetHandle);
  if (out === undefined) return `'${from}' is not an output port`;
  if (inp === undefined) return `'${to}' is not an input port`;
  if (out !== inp) return `port types differ: ${out} output '${from}' cannot feed ${inp} input '${to}'`;
  if (isFed(edges, link.target, link.targetHandle)) return `input '${to}' is already fed`;
  if (reaches(edges, link.target, link.source)) return `'${from}' -> '${to}' would close a cycle`;
  return null;
}
