// Dead letters: a failed node's input in an editor, patched and redriven; poison records.
import { get, post } from "../api.js";
import { may } from "../access.js";
import { h, json, when } from "../dom.js";

export async function show(page, { me }) {
  const { dead_letters: letters } = await get("/dead-letters");
  const departments = new Map();
  const departmentOf = async (workflowId) => {
    if (!departments.has(workflowId)) {
      departments.set(workflowId, get(`/workflows/${encodeURIComponent(workflowId)}/graph`).then((g) => g.department, () => null));
    }
    return departments.get(workflowId);
  };
  page.append(h("h1", {}, "Dead letters"));
  if (!letters.length) {
    page.append(h("p", {}, "No dead letter."));
    return;
  }
  for (const letter of letters) {
    const department = letter.workflow_id ? await departmentOf(letter.workflow_id) : null;
    page.append(card(letter, letter.kind === "node" && may(me, "operator", department)));
  }
}

function card(letter, redrives) {
  const element = h(
    "article",
    { class: "card dead-letter", "data-id": letter.id },
    h("h2", {}, letter.kind === "node" ? `${letter.workflow_id} · node ${letter.node_id}` : `record on ${letter.topic}`),
    h(
      "p",
      {},
      `${when(letter.at)}`,
      letter.execution_id ? [" · ", h("a", { href: `#/executions/${encodeURIComponent(letter.execution_id)}` }, letter.execution_id)] : "",
      letter.redriven_at ? ` · redriven ${when(letter.redriven_at)}` : "",
    ),
    (letter.errors || []).map((e) => h("p", { class: "error" }, `${e.type}: ${e.message}`)),
    letter.reason ? h("p", { class: "error" }, letter.reason) : null,
  );
  if (letter.kind !== "node") {
    element.append(json({ key: letter.key, value: letter.value }));
    return element;
  }
  if (!redrives || letter.redriven_at) {
    element.append(h("h3", {}, "Input"), json(letter.input));
    return element;
  }
  const editor = h("textarea", { class: "editor", rows: 8, "aria-label": "input (JSON)", spellcheck: "false" },
    JSON.stringify(letter.input, null, 2));
  const error = h("p", { class: "error", role: "alert" });
  element.append(
    h("label", {}, "Input (edit to patch it)", editor),
    h("div", { class: "actions" }, h("button", {
      "data-action": "redrive",
      onclick: async () => {
        error.textContent = "";
        let input;
        try {
          input = JSON.parse(editor.value);
        } catch (failure) {
          error.textContent = `input: not JSON (${failure.message})`;
          return;
        }
        try {
          const unchanged = JSON.stringify(input) === JSON.stringify(letter.input);
          await post(`/dead-letters/${encodeURIComponent(letter.id)}/redrive`, unchanged ? {} : { input });
          element.replaceChildren(h("p", { class: "decided" }, "Redriven: ",
            h("a", { href: `#/executions/${encodeURIComponent(letter.execution_id)}` }, "follow the execution")));
        } catch (failure) {
          error.textContent = failure.message;
        }
      },
    }, "Redrive")),
    error,
  );
  return element;
}
