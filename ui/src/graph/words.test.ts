import { describe, expect, it } from "vitest";
import { generatedTitle, humanise, isClassName, pageTerms } from "./words";

describe("humanise", () => {
  it("turns keys into sentence-case titles with acronyms and units", () => {
    expect(humanise("label_column")).toBe("Label column");
    expect(humanise("id_column")).toBe("ID column");
    expect(humanise("time_budget_s")).toBe("Time budget (s)");
    expect(humanise("timeout_s")).toBe("Timeout (s)");
    expect(humanise("hpo_trials")).toBe("HPO trials");
    expect(humanise("base_url")).toBe("Base URL");
    expect(humanise("textPairColumn")).toBe("Text pair column");
    expect(humanise("write-results")).toBe("Write results");
    expect(humanise("csv")).toBe("CSV");
    expect(humanise("s")).toBe("S"); // a lone unit is a word
  });
  it("recognises the titles pydantic makes up: from a field name or a class name", () => {
    expect(generatedTitle("time_budget_s")).toBe("Time Budget S");
    expect(generatedTitle("labels")).toBe("Labels");
    for (const name of ["InferParams", "TaskConfig", "CsvSource", "ModelSpec", "GraphSearch"]) {
      expect(isClassName(name), name).toBe(true);
    }
    for (const title of ["Labels", "Label column", "Time Budget S", "Example", "API key"]) {
      expect(isClassName(title), title).toBe(false);
    }
  });
});

describe("pageTerms", () => {
  it("puts CLI flags in the form's terms", () => {
    expect(pageTerms("fix the rows listed, or run with --gate quarantine to set them aside")).toBe(
      "fix the rows listed, or set 'Gate' to quarantine in this node's form to set them aside",
    );
    expect(pageTerms("pass --label-column label")).toBe("pass set 'Label column' to label in this node's form");
    expect(pageTerms("rerun with --drop-duplicates")).toBe("turn on 'Drop duplicates' in this node's form");
    expect(pageTerms("nothing to change here")).toBe("nothing to change here");
  });
});
