// Workflows and their versions: the graph of each, a diff between two, rollback, start.
import { get, post } from "../api.js";
import { may } from "../access.js";
import { badge, fill, h, table, when } from "../dom.js";
import { drawGraph } from "../graph.js";

export async function list(page) {
  const { workflows } = await get("/workflows");
  page.append(
    h("h1", {}, "Workflows"),
    workflows.length
      ? table(
          ["Workflow", "Name", "Version", "Deployed"],
          workflows.map((w) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(w.id)}` }, w.id)),
              h("td", {}, w.name || ""),
              h("td", {}, `v${w.version}`),
              h("td", {}, when(w.deployed_at)),
            ),
          ),
        )
      : h("p", {}, "No workflow is deployed yet."),
  );
}

export async function show(page, { me }, workflowId) {
  const path = `/workflows/${encodeURIComponent(workflowId)}`;
  const [{ versions }, graph, { executions }] = await Promise.all([
    get(`${path}/versions`),
    get(`${path}/graph`),
    get(`${path}/executions?limit=20`),
  ]);
  const department = graph.department;
  const latest = versions[versions.length - 1].version;
  const picture = h("div", { class: "graph-box", id: "graph" });
  const diffBox = h("div", { id: "diff" });
  const heading = h("h2", {}, `Version ${latest}`);

  async function showVersion(number, marks = {}) {
    const drawn = await get(`${path}/graph?version=${number}`);
    heading.textContent = `Version ${number}`;
    fill(picture, drawGraph(drawn, { marks }));
  }

  const versionRows = versions.map((v) =>
    h(
      "tr",
      {},
      h("td", {}, h("button", { class: "link", onclick: () => showVersion(v.version) }, `v${v.version}`)),
      h("td", {}, when(v.deployed_at)),
      h("td", {}, v.deployed_by || ""),
      h("td", {}, v.restores ? `restores v${v.restores}` : ""),
      h(
        "td",
        {},
        may(me, "editor", department) && v.version !== latest
          ? h(
              "button",
              {
                class: "danger",
                "data-action": "rollback",
                onclick: async () => {
                  if (!confirm(`Make v${v.version}'s text the current version?`)) return;
                  await post(`${path}/rollback`, { version: v.version });
                  location.hash = `#/workflows/${encodeURIComponent(workflowId)}`;
                  dispatchEvent(new HashChangeEvent("hashchange"));
                },
              },
              "Roll back to this",
            )
          : null,
      ),
    ),
  );

  const options = versions.map((v) => h("option", { value: v.version }, `v${v.version}`));
  const from = h("select", { id: "diff-from", "aria-label": "from version" }, options.map((o) => o.cloneNode(true)));
  const to = h("select", { id: "diff-to", "aria-label": "to version" }, options);
  from.value = String(Math.max(1, latest - 1));
  to.value = String(latest);
  const diffForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const found = await get(`${path}/diff?from=${from.value}&to=${to.value}`);
        const marks = {};
        for (const id of found.nodes.added) marks[id] = "added";
        for (const id of found.nodes.changed) marks[id] = "changed";
        await showVersion(found.to, marks);
        fill(diffBox, 
          h(
            "p",
            {},
            `Added: ${found.nodes.added.join(", ") || "none"} · changed: ${found.nodes.changed.join(", ") || "none"}`,
            ` · removed: ${found.nodes.removed.join(", ") || "none"}`,
          ),
          h("pre", { class: "diff" }, found.diff.split("\n").map((line) =>
            h("span", { class: line.startsWith("+") ? "plus" : line.startsWith("-") ? "minus" : "" }, `${line}\n`),
          )),
        );
      },
    },
    "Diff ",
    from,
    " → ",
    to,
    h("button", { type: "submit" }, "Show diff"),
  );

  page.append(
    h("h1", {}, workflowId, department ? h("small", {}, ` department ${department}`) : null),
    may(me, "operator", department) ? startForm(path) : null,
    heading,
    picture,
    h("h2", {}, "Versions"),
    table(["Version", "Deployed", "By", "", ""], versionRows),
    diffForm,
    diffBox,
    h("h2", {}, "Recent executions"),
    executions.length
      ? table(
          ["Execution", "Version", "Status", "Started"],
          executions.map((e) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(e.execution_id)}` }, e.execution_id)),
              h("td", {}, `v${e.workflow_version}`),
              h("td", {}, badge(e.status)),
              h("td", {}, when(e.started_at || e.accepted_at)),
            ),
          ),
        )
      : h("p", {}, "None yet."),
  );
  fill(picture, drawGraph(graph));
}

function startForm(path) {
  const input = h("textarea", { id: "start-input", rows: 3, "aria-label": "input (JSON)" }, "{}");
  const error = h("p", { class: "error", role: "alert" });
  return h(
    "form",
    {
      class: "card",
      id: "start",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          const started = await post(`${path}/executions`, { input: JSON.parse(input.value || "{}") });
          location.hash = `#/executions/${encodeURIComponent(started.execution_id)}`;
        } catch (failure) {
          error.textContent = failure.message;
        }
      },
    },
    h("label", { for: "start-input" }, "Start an execution with this input (JSON)"),
    input,
    h("button", { type: "submit", "data-action": "start" }, "Start"),
    error,
  );
}
