// Uploading a data file (PUT /api/v1/data-files/{name}) into the data root, and pointing a load node at it.
import type { Params } from "../types";

/** The source kinds an upload may be, by file suffix, with the content type the API reads it as. */
const KINDS: Record<string, { kind: string; type: string }> = {
  csv: { kind: "csv", type: "text/csv" },
  jsonl: { kind: "jsonl", type: "application/x-ndjson" },
};

/** An upload's source kind and content type from its name (".csv", ".jsonl"), or null for anything else. */
export function uploadKind(name: string): { kind: string; type: string } | null {
  const suffix = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase() ?? "";
  return KINDS[suffix] ?? null;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Whether a stage reads a file source (its parameters have a `source` with a choice of kinds): its panel offers
 * an upload. */
export function readsFileSource(schema: unknown): boolean {
  const source = isRecord(schema) && isRecord(schema.properties) ? schema.properties.source : undefined;
  return isRecord(source) && (Array.isArray(source.oneOf) || Array.isArray(source.anyOf));
}

/** The node's parameters with its source pointing at an uploaded file (`path` as the API answered, relative to the
 * data root); the source's other settings are kept when the kind stays the same. */
export function withUploadedSource(params: Params, path: string, kind: string): Params {
  const before = isRecord(params.source) && params.source.kind === kind ? params.source : {};
  return { ...params, source: { ...before, kind, path } };
}
