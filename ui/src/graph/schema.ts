// Parameter schemas as the form shows them. Pydantic writes an optional field as
// `anyOf: [<the type>, {type: "null"}]` with `default: null`; @rjsf would show that as a choice between
// "option 1" and "option 2". The form shows the field itself instead: left empty, the key is omitted and the
// server applies its default (None). Everything else (descriptions, bounds, enums) is kept as written.

type Schema = { [key: string]: unknown };

const isSchema = (value: unknown): value is Schema =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isNull = (value: unknown): boolean => isSchema(value) && value.type === "null" && Object.keys(value).length === 1;

function nullableBranch(schema: Schema): Schema | undefined {
  const options = schema.anyOf;
  if (!Array.isArray(options) || options.length !== 2) return undefined;
  const rest = options.filter((o) => !isNull(o));
  return rest.length === 1 && isSchema(rest[0]) ? rest[0] : undefined;
}

/** A copy of `schema` with every `anyOf [X, null]` replaced by X (keeping the outer title and description). */
export function formSchema<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map((s) => formSchema(s)) as T;
  if (!isSchema(schema)) return schema;
  const branch = nullableBranch(schema);
  let result: Schema = schema;
  if (branch) {
    const { anyOf: _anyOf, default: fallback, ...outer } = schema;
    result = { ...branch, ...outer };
    if (fallback !== null && fallback !== undefined) result.default = fallback;
  }
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, formSchema(v)])) as T;
}
