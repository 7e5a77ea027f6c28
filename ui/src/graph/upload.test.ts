import { describe, expect, it } from "vitest";
import type { StageInfo } from "../types";
import CATALOGUE from "./catalogue.fixture.json";
import { readsFileSource, uploadKind, withUploadedSource } from "./upload";

const STAGES = CATALOGUE as unknown as StageInfo[];

describe("upload", () => {
  it("takes CSV and JSONL files, by suffix, and nothing else", () => {
    expect(uploadKind("My Feedback.CSV")).toEqual({ kind: "csv", type: "text/csv" });
    expect(uploadKind("rows.jsonl")).toEqual({ kind: "jsonl", type: "application/x-ndjson" });
    expect(uploadKind("rows.json")).toBeNull();
    expect(uploadKind("csv")).toBeNull();
  });
  it("offers an upload on the stages that read a file source only", () => {
    expect(STAGES.filter((s) => readsFileSource(s.params_schema)).map((s) => s.name)).toEqual(["load"]);
  });
  it("points the source at the uploaded file, keeping its settings when the kind stays", () => {
    const params = { source: { kind: "csv", path: "old.csv", delimiter: ";" }, columns: ["text"] };
    expect(withUploadedSource(params, "uploads/new.csv", "csv")).toEqual({
      source: { kind: "csv", path: "uploads/new.csv", delimiter: ";" },
      columns: ["text"],
    });
    expect(withUploadedSource(params, "uploads/new.jsonl", "jsonl").source).toEqual({
      kind: "jsonl",
      path: "uploads/new.jsonl",
    });
    expect(withUploadedSource({}, "uploads/a.csv", "csv")).toEqual({ source: { kind: "csv", path: "uploads/a.csv" } });
  });
});
