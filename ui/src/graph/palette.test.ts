import { describe, expect, it } from "vitest";
import type { StageInfo } from "../types";
import CATALOGUE from "./catalogue.fixture.json";
import { kindOf, paletteGroups } from "./palette";

const STAGES = CATALOGUE as unknown as StageInfo[];
const names = (groups: ReturnType<typeof paletteGroups>) =>
  Object.fromEntries(groups.map((g) => [g.kind.name, g.stages.map((s) => s.name)]));

describe("paletteGroups", () => {
  it("groups the catalogue by what each stage is for, in the order a pipeline reads", () => {
    expect(names(paletteGroups(STAGES))).toEqual({
      Sources: ["graph-load", "load"],
      "Data preparation": ["clean", "validate"],
      "Models and scores": ["evaluate", "infer"],
      Prompts: ["optimize-prompt"],
      Graphs: ["graph-search", "meta-features"],
      Outputs: ["write", "write-results"],
    });
    expect(paletteGroups(STAGES).flatMap((g) => g.stages)).toHaveLength(STAGES.length);
  });
  it("searches names, descriptions and port types; every word must match; empty groups go", () => {
    expect(names(paletteGroups(STAGES, "predictions"))).toEqual({
      "Models and scores": ["evaluate", "infer"],
      Outputs: ["write-results"],
    });
    expect(names(paletteGroups(STAGES, "LOAD graph"))).toEqual({ Sources: ["graph-load"] });
    expect(names(paletteGroups(STAGES, "accuracy"))).toEqual({ "Models and scores": ["evaluate"] });
    expect(paletteGroups(STAGES, "no-such-stage")).toEqual([]);
    expect(names(paletteGroups(STAGES, "  "))).toEqual(names(paletteGroups(STAGES)));
  });
  it("takes the catalogue's own kind when it sends one", () => {
    const sent = { ...STAGES[0], kind: "outputs" } as StageInfo;
    expect(kindOf(sent).name).toBe("Outputs");
    expect(kindOf({ ...STAGES[0], kind: "graph_tools" } as StageInfo).name).toBe("Graph tools");
  });
});
