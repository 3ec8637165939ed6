// A reply form made from a JSON Schema (an approval's `input`): a field per property of an
// object schema (text, number, checkbox, a list for an enum), else one JSON box.
import { h } from "./dom.js";

export function schemaForm(schema, prefix) {
  if (!schema || schema.type !== "object" || !schema.properties) {
    if (!schema) return { element: null, value: () => ({}) };
    const box = h("textarea", { rows: 3, "aria-label": "reply (JSON)", name: `${prefix}-json` }, "{}");
    return { element: h("label", {}, "Reply (JSON)", box), value: () => JSON.parse(box.value || "{}") };
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties).map(([name, property]) => {
    const id = `${prefix}-${name}`;
    let input;
    let read;
    if (Array.isArray(property.enum)) {
      input = h("select", { id, name }, property.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
      read = () => JSON.parse(input.value);
    } else if (property.type === "boolean") {
      input = h("input", { id, name, type: "checkbox" });
      read = () => input.checked;
    } else if (property.type === "number" || property.type === "integer") {
      input = h("input", { id, name, type: "number", step: property.type === "integer" ? 1 : "any", required: required.has(name) });
      read = () => (input.value === "" ? undefined : Number(input.value));
    } else if (property.type === "string") {
      input = h("input", { id, name, type: "text", required: required.has(name) });
      read = () => (input.value === "" ? undefined : input.value);
    } else {
      input = h("textarea", { id, name, rows: 2, required: required.has(name) });
      read = () => (input.value === "" ? undefined : JSON.parse(input.value));
    }
    return {
      name,
      read,
      element: h(
        "label",
        { for: id },
        `${property.title || name}${required.has(name) ? " *" : ""}`,
        property.description ? h("small", {}, ` ${property.description}`) : null,
        input,
      ),
    };
  });
  return {
    element: h("fieldset", {}, h("legend", {}, "Reply"), fields.map((f) => f.element)),
    value: () => {
      const data = {};
      for (const field of fields) {
        const found = field.read();
        if (found !== undefined) data[field.name] = found;
      }
      return data;
    },
  };
}
