// The event bus: recent events by type and the executions each started (from each
// workflow's newest executions, which name the event that started them).
import { get } from "../api.js";
import { badge, h, table, when } from "../dom.js";

const PER_WORKFLOW = 50;

export async function show(page) {
  const { workflows } = await get("/workflows");
  const lists = await Promise.all(
    workflows.map((w) => get(`/workflows/${encodeURIComponent(w.id)}/executions?limit=${PER_WORKFLOW}`)),
  );
  const byType = new Map();
  for (const { executions } of lists) {
    for (const execution of executions) {
      if (!execution.event) continue;
      const type = execution.event.type;
      if (!byType.has(type)) byType.set(type, []);
      byType.get(type).push(execution);
    }
  }
  page.append(h("h1", {}, "Event bus"));
  if (!byType.size) {
    page.append(h("p", {}, "No execution was started by an event yet."));
    return;
  }
  for (const [type, started] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
    started.sort((a, b) => Date.parse(b.accepted_at || b.started_at) - Date.parse(a.accepted_at || a.started_at));
    page.append(
      h("section", { class: "card event-type", "data-type": type },
        h("h2", {}, type, h("small", {}, ` ${started.length} recent`)),
        table(["Event", "Source", "Started", "Status", "When"], started.map((e) => h("tr", {},
          h("td", {}, h("code", {}, e.event.id)),
          h("td", {}, e.event.source || ""),
          h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(e.execution_id)}` }, `${e.workflow_id}`)),
          h("td", {}, badge(e.status)),
          h("td", {}, when(e.accepted_at || e.started_at)),
        ))),
      ),
    );
  }
}
