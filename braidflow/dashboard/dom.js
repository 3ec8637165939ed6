// A small element builder: h("a", {href: "#/x", class: "y"}, "text", child, ...).
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    // Through the CSSOM: the Content-Security-Policy refuses style attributes.
    else if (name === "style") Object.assign(element.style, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

// Replace what `element` holds with `children` (nested lists and nulls as h takes them).
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

export function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

// Pretty JSON in a <pre>.
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// A local time for an ISO time the API gives (UTC).
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function table(headings, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", {}, text)))),
      h("tbody", {}, rows),
    ),
  );
}

export function badge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}
