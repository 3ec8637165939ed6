// An execution's live graph: nodes colored by state, updated as its lifecycle events
// arrive on GET /executions/{id}/events (read with fetch: it needs Authorization), with
// what it used so far (its `cost`), a node timeline, inputs, outputs, errors, join progress,
// logs and the control buttons.
import { ApiError, get, post, stream } from "../api.js";
import { may } from "../access.js";
import { badge, fill, h, json, table, when } from "../dom.js";
import { drawGraph } from "../graph.js";

const ENDED = new Set(["completed", "failed", "cancelled"]);
// After the event stream breaks (its worker restarting, say): wait this long, read the
// execution again and reconnect after the last event seen.
const RECONNECT_MS = 1000;

const count = (n, one, many = `${one}s`) => `${n ?? 0} ${n === 1 ? one : many}`;

export async function show(page, { me }, executionId) {
  const path = `/executions/${encodeURIComponent(executionId)}`;
  let view = await get(path);
  const graph = await get(
    `/workflows/${encodeURIComponent(view.workflow_id)}/graph?version=${view.workflow_version}`,
  );
  const controls = may(me, "operator", graph.department);
  const stopped = new AbortController();
  let picked = null;
  let logs = null;
  const body = h("div", { class: "execution" });
  page.append(body);

  function render() {
    const states = Object.fromEntries(view.nodes.map((n) => [n.node_id, n.status]));
    const picture = h("div", { class: "graph-box", id: "graph" }, drawGraph(graph, {
      states,
      onPick: (id) => {
        picked = id;
        render();
      },
    }));
    fill(body, 
      h(
        "h1",
        {},
        "Execution ",
        h("code", {}, view.execution_id),
        " ",
        h("span", { id: "execution-status" }, badge(view.status)),
        view.paused ? h("span", { class: "badge status-paused" }, "paused") : null,
      ),
      h(
        "p",
        {},
        h("a", { href: `#/workflows/${encodeURIComponent(view.workflow_id)}` }, view.workflow_id),
        ` v${view.workflow_version} · started ${when(view.started_at || view.accepted_at)}`,
        view.completed_at ? ` · ended ${when(view.completed_at)}` : "",
        view.parent ? [" · child of ", h("a", { href: `#/executions/${view.parent.execution_id}` }, view.parent.execution_id)] : "",
        view.trace_id ? [" · trace ", h("code", { id: "execution-trace" }, view.trace_id)] : "",
      ),
      view.cost ? spending(view.cost) : null,
      controls ? buttons() : null,
      picture,
      picked ? nodeDetail(picked) : null,
      h("h2", {}, "Timeline"),
      timeline(),
      view.joins && view.joins.length ? [h("h2", {}, "Joins"), joins()] : null,
      h("div", { class: "columns" },
        h("div", {}, h("h2", {}, "Input"), json(view.input)),
        h("div", {}, h("h2", {}, "Output"), json(view.output)),
      ),
      view.error ? [h("h2", {}, "Error"), h("p", { class: "error" }, `${view.error.node_id || ""}: ${view.error.type}: ${view.error.message}`)] : null,
      logs && logs.length ? [h("h2", {}, "Logs"), logLines()] : null,
    );
  }

  // One line of what the execution used (docs/api.md, "cost"): money in the currency of the
  // connections' prices, tokens per model, http calls, run time per node kind, attempts.
  function spending(cost) {
    const models = Object.entries(cost.tokens || {});
    const kinds = Object.entries(cost.run_ms || {});
    return h(
      "p",
      { id: "execution-cost", class: "cost" },
      "Cost ",
      h("span", { "data-part": "money", title: "in the currency of the connections' prices" }, String(cost.money)),
      models.flatMap(([model, used]) => [
        " · ",
        h(
          "span",
          { "data-part": "tokens", "data-model": model },
          `${model}: ${count(used.total_tokens, "token")} (${used.prompt_tokens ?? 0} in, ${used.completion_tokens ?? 0} out)`,
        ),
      ]),
      " · ",
      h("span", { "data-part": "http-calls" }, count(cost.http_calls, "http call")),
      kinds.length ? [" · ", h("span", { "data-part": "run-ms" }, kinds.map(([kind, ms]) => `${kind} ${ms} ms`).join(", "))] : null,
      " · ",
      h("span", { "data-part": "attempts" }, `${count(cost.attempts, "attempt")}, ${count(cost.retries, "retry", "retries")}`),
    );
  }

  function buttons() {
    const running = !ENDED.has(view.status);
    const act = (action) => async () => {
      await post(`${path}/${action}`, {});
      await refresh();
    };
    return h(
      "div",
      { class: "actions" },
      running && !view.paused ? h("button", { "data-action": "pause", onclick: act("pause") }, "Pause") : null,
      running && view.paused ? h("button", { "data-action": "resume", onclick: act("resume") }, "Resume") : null,
      running ? h("button", { class: "danger", "data-action": "cancel", onclick: act("cancel") }, "Cancel") : null,
    );
  }

  function nodeDetail(nodeId) {
    const run = view.nodes.find((n) => n.node_id === nodeId);
    if (!run) return h("div", { class: "card" }, h("h2", {}, nodeId), h("p", {}, "Not reached."));
    return h(
      "div",
      { class: "card", id: "node-detail" },
      h("h2", {}, nodeId, " ", badge(run.status)),
      h("p", {}, `attempt ${run.attempt}`, run.duration_ms !== null ? ` · ${run.duration_ms} ms` : ""),
      run.items ? h("p", {}, `items ${run.items.done}/${run.items.total}, ${run.items.running} running, ${run.items.failed} failed`) : null,
      run.input !== null && run.input !== undefined ? h("section", { "data-part": "input" }, h("h3", {}, "Input"), json(run.input)) : null,
      run.output !== null && run.output !== undefined ? h("section", { "data-part": "output" }, h("h3", {}, "Output"), json(run.output)) : null,
      run.errors.length ? [h("h3", {}, "Errors"), run.errors.map((e) => h("p", { class: "error" }, `${e.type}: ${e.message}`))] : null,
    );
  }

  function timeline() {
    const runs = view.nodes.filter((n) => n.started_at);
    if (!runs.length) return h("p", {}, "No node has started yet.");
    const start = Math.min(...runs.map((n) => Date.parse(n.started_at)));
    const end = Math.max(...runs.map((n) => Date.parse(n.completed_at || new Date().toISOString())));
    const span = Math.max(end - start, 1);
    return h(
      "div",
      { class: "timeline" },
      runs.map((n) => {
        const from = Date.parse(n.started_at) - start;
        const to = Date.parse(n.completed_at || new Date().toISOString()) - start;
        return h(
          "div",
          { class: "lane" },
          h("span", { class: "lane-name" }, n.node_id),
          h(
            "span",
            { class: "lane-track" },
            h("span", {
              class: `bar state-${n.status}`,
              style: { left: `${(100 * from) / span}%`, width: `${Math.max((100 * (to - from)) / span, 0.5)}%` },
              title: n.duration_ms !== null ? `${n.duration_ms} ms` : n.status,
            }),
          ),
          h("span", { class: "lane-ms" }, n.duration_ms !== null ? `${n.duration_ms} ms` : n.status),
        );
      }),
    );
  }

  function joins() {
    return table(
      ["Join", "Arrived", "Dead branches", "Fired"],
      view.joins.map((j) =>
        h("tr", {}, h("td", {}, j.node_id), h("td", {}, j.arrived), h("td", {}, j.dead), h("td", {}, j.fired ? "yes" : "no")),
      ),
    );
  }

  function logLines() {
    return h(
      "pre",
      { class: "logs" },
      logs.flatMap((run) => [
        `${run.node_id} attempt ${run.attempt}${run.item !== null && run.item !== undefined ? ` item ${run.item}` : ""}\n`,
        ...run.lines.map((l) => `  ${l.at} ${l.level} ${l.message}\n`),
        run.cut ? `  (cut${run.cut_lines ? `: ${run.cut_lines} more lines not kept` : ""})\n` : "",
      ]),
    );
  }

  // One read at a time: events arriving during a read make one more read after it, so a
  // burst of events costs the worker two reads, and an older answer never lands last.
  let reading = null;
  let again = false;
  function refresh() {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      do {
        again = false;
        view = await get(path);
      } while (again);
      if (ENDED.has(view.status) && logs === null) await readLogs();
      render();
    })().finally(() => {
      reading = null;
    });
    return reading;
  }

  async function readLogs() {
    try {
      logs = (await get(`${path}/logs`)).logs;
    } catch (error) {
      // A worker older than the logs endpoint answers 404: show none.
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      logs = [];
    }
  }

  async function follow() {
    let last = null;
    while (!stopped.signal.aborted && !ENDED.has(view.status)) {
      try {
        await stream(`${path}/events`, (event) => {
          last = event.id || last;
          refresh();
        }, stopped.signal, last);
        await refresh();
      } catch (error) {
        if (stopped.signal.aborted) return;
        await new Promise((resume) => setTimeout(resume, RECONNECT_MS));
        await refresh();
      }
    }
  }

  if (ENDED.has(view.status)) await readLogs();
  render();
  follow();
  return () => stopped.abort();
}
