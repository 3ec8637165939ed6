// The department map: workflows as nodes, edges for sub-workflow calls and for events one
// publishes and another takes (GET /map, derived from the definitions and laid out by the
// worker), each workflow colored by its recent success rate.
import { get } from "../api.js";
import { fill, h } from "../dom.js";
import { drawGraph } from "../graph.js";

function rate(node) {
  if (node.success_rate === null) return "";
  if (node.success_rate >= 0.95) return "rate-good";
  if (node.success_rate >= 0.8) return "rate-fair";
  return "rate-poor";
}

export async function show(page) {
  const { departments } = await get("/departments");
  const pick = h("select", { id: "map-department", "aria-label": "department" },
    h("option", { value: "" }, "every department"),
    departments.map((d) => h("option", { value: d.name }, d.name)));
  const box = h("div", { class: "graph-box", id: "map" });
  const notes = h("div");
  async function draw() {
    const query = pick.value ? `?department=${encodeURIComponent(pick.value)}` : "";
    const map = await get(`/map${query}`);
    const marks = Object.fromEntries(map.nodes.map((n) => [n.id, rate(n)]));
    fill(box, 
      map.nodes.length
        ? drawGraph({ ...map, id: "map", version: "" }, {
            marks,
            onPick: (id) => { location.hash = `#/workflows/${encodeURIComponent(id)}`; },
          })
        : h("p", {}, "No workflow here."),
    );
    fill(notes, 
      h("p", { class: "hint" }, "Solid edges: a sub-workflow call or an event type (its label). ",
        "Green: at least 95% of the newest executions completed; amber: 80%; red: less; white: none ended."),
      h("ul", {}, map.nodes.map((n) => h("li", {}, `${n.id}: `,
        n.success_rate === null ? "no execution ended yet" : `${Math.round(n.success_rate * 100)}% of ${n.ended} completed`))),
    );
  }
  pick.addEventListener("change", draw);
  page.append(h("h1", {}, "Department map"), h("form", { class: "inline" }, "Show ", pick), box, notes);
  await draw();
}
