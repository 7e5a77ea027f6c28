// rjsf templates for parameter forms in words: an object's advanced fields folded under "Advanced", an array
// item without the "Labels-1" label rjsf gives it, a discriminator constant (a source's `kind`) not shown.
import { getDefaultRegistry } from "@rjsf/core";
import type { FieldTemplateProps, ObjectFieldTemplateProps } from "@rjsf/utils";
import { advancedInUse, splitFields } from "../graph/form";

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
  const shown = props.properties.filter((p) => basic.includes(p.name));
  const folded = props.properties.filter((p) => advanced.includes(p.name));
  const id = props.fieldPathId.$id;
  const fold = (
    <details
      key="advanced"
      className="advanced"
      open={advancedInUse(props.schema, advanced, props.formData)}
      data-testid={`advanced-${id}`}
    >
      <summary>
        Advanced <span className="count">({folded.length})</span>
      </summary>
      {folded.map((p) => p.content)}
    </details>
  );
  return (
    <DEFAULTS.ObjectFieldTemplate {...props} properties={[...shown, { name: "", content: fold, hidden: false }]} />
  );
}

export const FORM_TEMPLATES = { FieldTemplate, ObjectFieldTemplate };
