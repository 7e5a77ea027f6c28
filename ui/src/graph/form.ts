// The parameter form in words (issue 33): titles and help from the parameter models' JSON Schema, never a class
// name; advanced fields told apart (the form folds them away); the few settings a node card shows.
import { generatedTitle, humanise, isClassName } from "./words";

type Schema = { [key: string]: unknown };

const isSchema = (value: unknown): value is Schema =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The first paragraph of a docstring-like description (pydantic copies a model's whole docstring, with its
 * "Attributes:" section), its reST ``code`` marks dropped. */
export function shortDescription(text: string): string {
  return text
    .split(/\n\s*\n/)[0]
    .replace(/``([^`]*)``/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text;
}

/** The definition a local `$ref` ("#/$defs/Name") points at, merged under the referring keys. */
export function resolved(node: Schema, root: Schema): Schema {
  const ref = node.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/$defs/")) return node;
  const target = (root.$defs as Schema | undefined)?.[ref.slice("#/$defs/".length)];
  if (!isSchema(target)) return node;
  const { $ref: _, ...rest } = node;
  return { ...target, ...rest };
}

/** A union option's label: its discriminator value and the first sentence of what it is ("CSV — A delimited text
 * file with a header row"). */
function optionTitle(option: Schema, root: Schema, discriminator: string | undefined): string | undefined {
  const target = resolved(option, root);
  const tag = discriminator ? (target.properties as Schema | undefined)?.[discriminator] : undefined;
  const value = isSchema(tag) && typeof tag.const === "string" ? tag.const : undefined;
  const about =
    typeof target.description === "string" ? shortDescription(target.description).split(/(?<=\.)\s/)[0] : "";
  const said = clip(about.replace(/\.$/, ""), 60);
  if (value) return said ? `${humanise(value)} — ${said}` : humanise(value);
  const title = typeof target.title === "string" ? target.title : undefined;
  return title && isClassName(title) ? humanise(title) : title;
}

/** A value without its null members, at any depth: the form shows an optional field left empty (the schema says
 * "a string", and null is how pydantic writes "not given" inside a default or saved parameters). */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v)) as T;
  if (!isSchema(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  ) as T;
}

function worded(node: unknown, root: Schema): unknown {
  if (Array.isArray(node)) return node.map((n) => worded(n, root));
  if (!isSchema(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node))
    out[key] = key === "default" ? withoutNulls(value) : worded(value, root);
  if (typeof out.description === "string") out.description = shortDescription(out.description);
  if (typeof out.title === "string" && isClassName(out.title)) out.title = humanise(out.title);
  if (isSchema(out.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([key, prop]) => {
        if (!isSchema(prop)) return [key, prop];
        const title = prop.title;
        const keep = typeof title === "string" && title !== generatedTitle(key) && !isClassName(title);
        return [key, keep ? prop : { ...prop, title: humanise(key) }];
      }),
    );
  }
  for (const union of ["oneOf", "anyOf"] as const) {
    const options = out[union];
    if (!Array.isArray(options)) continue;
    const discriminator = isSchema(node.discriminator) ? (node.discriminator.propertyName as string) : undefined;
    out[union] = options.map((option) => {
      if (!isSchema(option) || option.type === "null") return option;
      const title = optionTitle(option, root, discriminator);
      return title ? { ...option, title } : option;
    });
  }
  return out;
}

/** The stage's parameter schema as the form shows it: every field titled in words (its own title when the model
 * wrote one, else its humanised key), descriptions cut to their first paragraph, union options named by what they
 * are, null members of defaults left out, and no title or description on the whole form (the panel's heading
 * already names the stage). */
export function wordedSchema<T>(schema: T): T {
  if (!isSchema(schema)) return schema;
  const { title: _title, description: _description, ...rest } = schema;
  return worded(rest, schema) as T;
}

const empty = (value: unknown) =>
  value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);

/** Keys whose fields are connection plumbing rather than what the node does. */
const PLUMBING = /(_url|_block)$/;

/** Whether a field belongs in the form's folded "Advanced" group: the model says so (`advanced: true` in its JSON
 * Schema, from `Field(json_schema_extra={"advanced": True})`), else an optional tuning knob (a number or a
 * switch: timeouts, seeds, sizes, retries) or connection plumbing (an endpoint, a credentials
 * block). A required field never is. */
export function isAdvanced(key: string, field: unknown, required: boolean): boolean {
  if (!isSchema(field)) return false;
  if (typeof field.advanced === "boolean") return field.advanced;
  if (required) return false;
  if (PLUMBING.test(key)) return true;
  return field.type === "number" || field.type === "integer" || field.type === "boolean";
}

/** An object schema's fields split into the ones shown and the advanced ones (in schema order); nothing is folded
 * away when every field would be. */
export function splitFields(schema: unknown): { basic: string[]; advanced: string[] } {
  const properties = isSchema(schema) && isSchema(schema.properties) ? schema.properties : {};
  const required = new Set(isSchema(schema) && Array.isArray(schema.required) ? (schema.required as string[]) : []);
  const keys = Object.keys(properties);
  const advanced = keys.filter((k) => isAdvanced(k, properties[k], required.has(k)));
  if (advanced.length === keys.length) return { basic: keys, advanced: [] };
  return { basic: keys.filter((k) => !advanced.includes(k)), advanced };
}

/** Whether any of the `advanced` fields holds a value of the user's (not its default; null or empty is the field
 * left alone): the folded group then starts open, so that nothing set is out of sight. */
export function advancedInUse(schema: unknown, advanced: readonly string[], values: unknown): boolean {
  const properties = isSchema(schema) && isSchema(schema.properties) ? schema.properties : {};
  const given = isSchema(values) ? values : {};
  return advanced.some((k) => {
    const fallback = isSchema(properties[k]) ? (properties[k] as Schema).default : undefined;
    return !empty(given[k]) && JSON.stringify(given[k]) !== JSON.stringify(fallback);
  });
}

export interface Setting {
  label: string;
  value: string;
}

function shown(value: unknown): string {
  if (Array.isArray(value))
    return value.map((v) => (isSchema(v) || Array.isArray(v) ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (isSchema(value)) return JSON.stringify(value);
  return String(value);
}

/** The settings a node card shows: its parameters that are set (required ones, or ones away from their default),
 * not advanced, in the form's order, nested objects opened (a source's path, the task's labels, the model), at
 * most `limit`, each value cut to `width` characters. */
export function keySettings(params: Record<string, unknown>, schema: unknown, limit = 3, width = 36): Setting[] {
  const root = isSchema(schema) ? schema : {};
  const found: Setting[] = [];
  const walk = (values: Record<string, unknown>, node: Schema, defaults: unknown) => {
    const object = resolved(node, root);
    const properties = isSchema(object.properties) ? object.properties : {};
    const required = new Set(Array.isArray(object.required) ? (object.required as string[]) : []);
    const discriminator = isSchema(node.discriminator) ? node.discriminator.propertyName : undefined;
    const keys = [...Object.keys(properties), ...Object.keys(values).filter((k) => !(k in properties))];
    for (const key of keys) {
      if (found.length >= limit) return;
      const value = values[key];
      const field = isSchema(properties[key]) ? resolved(properties[key] as Schema, root) : {};
      if (empty(value) || key === discriminator || key === "kind" || isAdvanced(key, field, required.has(key)))
        continue;
      const fallback = "default" in field ? field.default : isSchema(defaults) ? defaults[key] : undefined;
      if (isSchema(value)) {
        walk(value, unionBranch(field, value, root), fallback);
        continue;
      }
      if (!required.has(key) && JSON.stringify(value) === JSON.stringify(fallback)) continue;
      const title = typeof field.title === "string" && !isClassName(field.title) && field.title !== generatedTitle(key);
      found.push({ label: title ? (field.title as string) : humanise(key), value: clip(shown(value), width) });
    }
  };
  walk(params, root, undefined);
  return found;
}

/** The branch of a discriminated union a value takes (`kind: "csv"` -> the CSV source's schema), else the field. */
function unionBranch(field: Schema, value: Record<string, unknown>, root: Schema): Schema {
  const options = field.oneOf ?? field.anyOf;
  if (!Array.isArray(options)) return field;
  const tag = isSchema(field.discriminator) ? (field.discriminator.propertyName as string) : "kind";
  for (const option of options) {
    if (!isSchema(option)) continue;
    const branch = resolved(option, root);
    const marker = isSchema(branch.properties) ? branch.properties[tag] : undefined;
    if (isSchema(marker) && marker.const === value[tag]) return { ...branch, discriminator: { propertyName: tag } };
  }
  return field;
}
