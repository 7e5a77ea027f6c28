import { describe, expect, it } from "vitest";
import { formSchema } from "./schema";

describe("formSchema", () => {
  it("shows an optional field as the field itself, without the null default", () => {
    const schema = {
      type: "object",
      properties: {
        label_column: {
          anyOf: [{ type: "string" }, { type: "null" }],
          default: null,
          description: "Column with gold labels, if any.",
          title: "Label Column",
        },
      },
    };
    expect(formSchema(schema).properties.label_column).toEqual({
      type: "string",
      description: "Column with gold labels, if any.",
      title: "Label Column",
    });
  });

  it("keeps bounds, item types, references and a non-null default; works inside $defs", () => {
    const schema = {
      $defs: {
        Task: {
          properties: {
            labels: { anyOf: [{ items: { type: "string" }, maxItems: 1000, type: "array" }, { type: "null" }] },
            batch: { anyOf: [{ minimum: 1, maximum: 10000, type: "integer" }, { type: "null" }], default: 32 },
            model: { anyOf: [{ $ref: "#/$defs/Model" }, { type: "null" }], title: "Model" },
          },
        },
      },
    };
    const props = formSchema(schema).$defs.Task.properties;
    expect(props.labels).toEqual({ items: { type: "string" }, maxItems: 1000, type: "array" });
    expect(props.batch).toEqual({ minimum: 1, maximum: 10000, type: "integer", default: 32 });
    expect(props.model).toEqual({ $ref: "#/$defs/Model", title: "Model" });
  });

  it("leaves real choices alone (unions of two types, or of three with null) and does not touch the input", () => {
    const union = { anyOf: [{ type: "string" }, { type: "integer" }] };
    const three = { anyOf: [{ type: "string" }, { type: "integer" }, { type: "null" }] };
    const source = { properties: { a: union, b: three } };
    const copy = JSON.parse(JSON.stringify(source));
    expect(formSchema(source)).toEqual(copy);
    expect(source).toEqual(copy);
  });
});
