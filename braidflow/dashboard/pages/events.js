// The event bus: recent events by type, the executions each started and the waiting
// executions each resumed (GET /event-bus, from the execution index).
import { get } from "../api.js";
import { badge, h, table, when } from "../dom.js";

function runs(list, withNode) {
  if (!list.length) return "";
  return h("ul", { class: "runs" }, list.map((run) => h("li", { "data-execution": run.execution_id },
    h("a", { href: `#/executions/${encodeURIComponent(run.execution_id)}` }, run.workflow_id),
    withNode ? h("small", {}, ` at ${run.node_id}`) : null,
    " ",
    run.status ? badge(run.status) : null,
  )));
}

export async function show(page) {
  const { events } = await get("/event-bus");
  page.append(h("h1", {}, "Event bus"));
  if (!events.length) {
    page.append(h("p", {}, "No event has started or resumed an execution yet."));
    return;
  }
  const byType = new Map();
  for (const event of events) {
    const type = event.type || "(no type)";
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(event);
  }
  for (const [type, seen] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
    page.append(
      h("section", { class: "card event-type", "data-type": type },
        h("h2", {}, type, h("small", {}, ` ${seen.length} recent`)),
        table(["Event", "Source", "Started", "Resumed", "When"], seen.map((e) => h("tr", { "data-event": e.id },
          h("td", {}, h("code", {}, e.id)),
          h("td", {}, e.source || ""),
          h("td", { "data-part": "started" }, runs(e.started, false)),
          h("td", { "data-part": "resumed" }, runs(e.resumed, true)),
          h("td", {}, when(e.at)),
        ))),
      ),
    );
  }
}
