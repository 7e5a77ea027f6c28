import { describe, expect, it } from "vitest";
import type { StageInfo } from "../types";
import CATALOGUE from "./catalogue.fixture.json";
import {
  advancedInUse,
  isAdvanced,
  keySettings,
  withoutNulls,
  shortDescription,
  splitFields,
  wordedSchema,
} from "./form";
import { formSchema } from "./schema";
import { isClassName } from "./words";

// GET /api/v1/stages as the server answered it (2026-12-07): the real parameter schemas.
const STAGES = CATALOGUE as unknown as StageInfo[];
const stage = (name: string) => STAGES.find((s) => s.name === name)!;
const form = (name: string) => wordedSchema(formSchema(stage(name).params_schema)) as Record<string, any>;

/** Every title and description anywhere in a schema. */
function texts(node: unknown, found: { titles: string[]; descriptions: string[] } = { titles: [], descriptions: [] }) {
  if (Array.isArray(node)) node.forEach((n) => texts(n, found));
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "title" && typeof value === "string") found.titles.push(value);
      else if (key === "description" && typeof value === "string") found.descriptions.push(value);
      else texts(value, found);
    }
  }
  return found;
}

describe("wordedSchema", () => {
  it("leaves no class name, made-up title or docstring section in any stage's form", () => {
    for (const s of STAGES) {
      const { titles, descriptions } = texts(form(s.name));
      expect(titles.filter(isClassName), s.name).toEqual([]);
      expect(
        titles.filter((t) => /^([A-Z][a-z]* )+[A-Z]$/.test(t)),
        s.name,
      ).toEqual([]); // "Time Budget S"
      expect(
        descriptions.filter((d) => /Attributes:|``|\n/.test(d)),
        s.name,
      ).toEqual([]);
    }
  });
  it("titles fields by their keys in words, keeps the form untitled and names union options", () => {
    const infer = form("infer");
    expect(infer.title).toBeUndefined();
    expect(infer.description).toBeUndefined();
    expect(infer.properties.task.title).toBe("Task");
    expect(infer.properties.model.title).toBe("Model");
    expect(infer.$defs.TaskConfig.properties.labels.title).toBe("Labels");
    expect(infer.$defs.ModelSpec.properties.timeout_s.title).toBe("Timeout (s)");
    const load = form("load");
    expect(load.properties.source.oneOf.map((o: { title: string }) => o.title)).toEqual([
      "CSV — A delimited text file with a header row",
      "JSONL — JSON Lines: one JSON object per line",
      "Parquet — An Apache Parquet file",
      "SQL — A table or a query in a database reachable with SQLAlchemy",
    ]);
  });
  it("leaves nulls out of defaults and values, so that an optional field left empty is not an error", () => {
    expect(form("infer").properties.model.default).toEqual({
      model: "local-auto",
      timeout_s: 60,
      max_concurrency: 5,
      max_retries: 6,
      temperature: 0,
      threads: 1,
    });
    expect(withoutNulls({ a: null, b: [{ c: null, d: 1 }], e: "x" })).toEqual({ b: [{ d: 1 }], e: "x" });
  });
  it("keeps a title the model wrote itself", () => {
    const worded = wordedSchema({ properties: { k: { type: "string", title: "Knowledge base" } } });
    expect(worded.properties.k.title).toBe("Knowledge base");
  });
  it("cuts descriptions to their first paragraph", () => {
    expect(shortDescription("Which model.\n\nAttributes:\n    model: x")).toBe("Which model.");
    expect(shortDescription("A ``root/<name>/raw``\n folder")).toBe("A root/<name>/raw folder");
  });
});

describe("advanced fields", () => {
  it("folds tuning knobs and plumbing, never a required field or what the node is about", () => {
    const infer = form("infer");
    const model = splitFields(infer.$defs.ModelSpec);
    expect(model.basic).toEqual(["model"]);
    expect(model.advanced).toEqual([
      "base_url",
      "timeout_s",
      "max_concurrency",
      "max_retries",
      "temperature",
      "threads",
    ]);
    expect(splitFields(infer).advanced).toEqual(["credentials_block", "batch_size"]);
    const validate = splitFields(form("validate"));
    expect(validate.basic).toEqual(["task", "text_columns", "label_column", "labels", "id_column", "gate"]);
    expect(validate.advanced).toEqual(["min_length", "max_length"]);
  });
  it("follows the model's own word, and folds nothing when everything would be", () => {
    expect(isAdvanced("budget", { type: "integer", default: 1, advanced: false }, false)).toBe(false);
    expect(isAdvanced("path", { type: "string", advanced: true }, false)).toBe(true);
    expect(isAdvanced("seed", { type: "integer", default: 0 }, true)).toBe(false);
    const knobs = { properties: { a: { type: "number", default: 1 }, b: { type: "boolean", default: true } } };
    expect(splitFields(knobs)).toEqual({ basic: ["a", "b"], advanced: [] });
  });
});

describe("advancedInUse", () => {
  it("opens the fold only for a value of the user's, not a default or an empty one", () => {
    const model = form("infer").$defs.ModelSpec;
    const { advanced } = splitFields(model);
    const defaults = { model: "local-auto", base_url: null, timeout_s: 60, max_concurrency: 5, threads: 1 };
    expect(advancedInUse(model, advanced, defaults)).toBe(false);
    expect(advancedInUse(model, advanced, { ...defaults, base_url: "" })).toBe(false);
    expect(advancedInUse(model, advanced, { ...defaults, threads: 4 })).toBe(true);
    expect(advancedInUse(model, advanced, { ...defaults, base_url: "http://127.0.0.1:9/v4" })).toBe(true);
    expect(advancedInUse(model, advanced, undefined)).toBe(false);
  });
});

describe("keySettings", () => {
  it("shows what a node is set to: a source's path, the task's labels, the model", () => {
    const load = keySettings(
      { source: { kind: "csv", path: "user_feedback.csv", chunk_rows: 50000 } },
      stage("load").params_schema,
    );
    expect(load).toEqual([{ label: "Path", value: "user_feedback.csv" }]);
    const params = {
      task: { task_type: "text_classification", labels: ["正面", "负面", "中性"], threshold: 0.7 },
      model: { model: "local-auto", threads: 4 },
      text_column: "text",
    };
    expect(keySettings(params, stage("infer").params_schema)).toEqual([
      { label: "Labels", value: "正面, 负面, 中性" },
      { label: "Model", value: "local-auto" },
    ]);
  });
  it("leaves out defaults, advanced fields and empty values; cuts long values; stops at the limit", () => {
    const schema = stage("validate").params_schema;
    expect(keySettings({ gate: "fail", min_length: 3, labels: [] }, schema)).toEqual([]);
    const long = keySettings({ label_column: "x".repeat(80) }, schema, 3, 20);
    expect(long).toEqual([{ label: "Label column", value: `${"x".repeat(19)}…` }]);
    const many = { label_column: "l", labels: ["a"], id_column: "id", gate: "quarantine" };
    expect(keySettings(many, schema, 2).map((s) => s.label)).toEqual(["Label column", "Labels"]);
  });
});
