// rjsf templates for parameter forms in words: an object's advanced fields folded under "Advanced", an array
// item without the "Labels-1" label rjsf gives it, a discriminator constant (a source's `kind`) not shown.
import { getDefaultRegistry } from "@rjsf/core";
import type { FieldTemplateProps, ObjectFieldTemplateProps } from "@rjsf/utils";
import { splitFields } from "../graph/form";

const DEFAULTS = getDefaultRegistry().templates;

function FieldTemplate(props: FieldTemplateProps) {
  const path = props.fieldPathId?.path ?? [];
  const item = typeof path[path.length - 1] === "number";
  if (props.schema.const !== undefined) return <DEFAULTS.FieldTemplate {...props} hidden />;
  return <DEFAULTS.FieldTemplate {...props} displayLabel={props.displayLabel && !item} />;
}

function ObjectFieldTemplate(props: ObjectFieldTemplateProps) {
  const { basic, advanced } = splitFields(props.schema);
  if (!advanced.length) return <DEFAULTS.ObjectFieldTemplate {...props} />;
  const values = (props.formData ?? {}) as Record<string, unknown>;
  const properties = (props.schema.properties ?? {}) as Record<string, { default?: unknown }>;
  // Open when a folded field holds a value of the user's (not its default): nothing set stays out of sight.
  const changed = advanced.some(
    (k) => values[k] !== undefined && JSON.stringify(values[k]) !== JSON.stringify(properties[k]?.default),
  );
  const shown = props.properties.filter((p) => basic.includes(p.name));
  const folded = props.properties.filter((p) => advanced.includes(p.name));
  const id = props.fieldPathId.$id;
  const fold = (
    <details key="advanced" className="advanced" open={changed} data-testid={`advanced-${id}`}>
      <summary>
        Advanced <span className="count">({folded.length})</span>
      </summary>
      {folded.map((p) => p.content)}
    </details>
  );
  return <DEFAULTS.ObjectFieldTemplate {...props} properties={[...shown, { name: "", content: fold, hidden: false }]} />;
}

export const FORM_TEMPLATES = { FieldTemplate, ObjectFieldTemplate };
