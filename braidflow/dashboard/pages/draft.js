// Draft a workflow from a sentence (POST /drafts, docs/drafts.md): what `braidflow draft`
// prints, shown here: the problems sent back each round, the YAML, its graph and a dry run.
// Nothing is deployed until an editor presses Deploy.
import { api, post } from "../api.js";
import { may, mayAnywhere } from "../access.js";
import { fill, h, json } from "../dom.js";
import { drawGraph } from "../graph.js";

export async function show(page, { me }) {
  page.append(h("h1", {}, "Draft a workflow"));
  // The API asks for the editor role to draft: a draft spends the tenant's tokens.
  if (!mayAnywhere(me, "editor")) {
    page.append(h("p", { id: "draft-refused" }, "Drafting a workflow needs the editor role."));
    return;
  }
  const sentence = h("textarea", { id: "draft-sentence", rows: 3, required: true,
    placeholder: "When a high-priority ticket arrives, classify it, ask the on-call lead to approve the reply, then send it" });
  const model = h("input", { id: "draft-model", type: "text", required: true, placeholder: "gpt-4o-mini" });
  const connection = h("input", { id: "draft-connection", type: "text", placeholder: "the worker's only one" });
  const input = h("textarea", { id: "draft-input", rows: 2 }, "{}");
  const submit = h("button", { type: "submit", "data-action": "draft" }, "Draft");
  const error = h("p", { class: "error", role: "alert" });
  const result = h("section", { id: "draft-result" });
  const form = h(
    "form",
    {
      class: "card",
      id: "draft-form",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const body = { sentence: sentence.value.trim(), model: model.value.trim() };
        if (connection.value.trim()) body.connection = connection.value.trim();
        try {
          body.input = JSON.parse(input.value || "{}");
        } catch {
          error.textContent = "The dry run's input is not JSON.";
          return;
        }
        submit.disabled = true;
        fill(result, h("p", { class: "hint" }, "Asking the model…"));
        try {
          shown(result, await post("/drafts", body), me);
        } catch (failure) {
          result.replaceChildren();
          error.textContent = failure.message;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", { for: "draft-sentence" }, "What the workflow does, in a sentence"),
    sentence,
    h("label", { for: "draft-model" }, "Model"),
    model,
    h("label", { for: "draft-connection" }, "Connection (optional)"),
    connection,
    h("label", { for: "draft-input" }, "The dry run's input (JSON)"),
    input,
    submit,
    h("p", { class: "hint" }, "Nothing is deployed until you press Deploy."),
    error,
  );
  page.append(form, result);
}

function shown(result, drafted, me) {
  const rounds = drafted.rounds.flatMap((round, index) =>
    round.problems.length
      ? [
          h("p", {}, `Round ${index + 1}: ${round.problems.length} problem(s) sent back`),
          h("ul", { class: "problems" }, round.problems.map((p) => h("li", {}, p))),
        ]
      : [],
  );
  fill(
    result,
    h("div", { id: "draft-rounds" }, rounds),
    h("h2", {}, drafted.valid ? `Definition (valid after ${drafted.rounds.length} round(s))` : "Definition"),
    drafted.valid
      ? null
      : h("p", { class: "error", id: "draft-invalid" }, `No valid definition after ${drafted.rounds.length} round(s).`),
    h("pre", { id: "draft-definition" }, drafted.definition),
  );
  if (!drafted.valid) return;
  const { graph, dry_run: ran } = drafted;
  const picture = h("div", { class: "graph-box", id: "draft-graph" });
  fill(picture, drawGraph(graph));
  result.append(
    h("h2", {}, "Graph"),
    picture,
    h("h2", {}, "Dry run"),
    h(
      "p",
      { id: "draft-dry-run", "data-status": ran.status },
      `input ${JSON.stringify(ran.input)} · path ${ran.path.join(" → ") || "(none)"} · status ${ran.status}`,
    ),
    json(ran.error ? { error: ran.error } : { output: ran.output }),
  );
  if (!may(me, "editor", graph.department)) return;
  const deployed = h("p", { id: "draft-deployed" });
  const button = h(
    "button",
    {
      "data-action": "deploy",
      onclick: async () => {
        button.disabled = true;
        deployed.textContent = "";
        try {
          const done = await api("POST", "/workflows", drafted.definition, "application/yaml");
          fill(
            deployed,
            `Deployed ${done.id} version ${done.version}: `,
            h("a", { href: `#/workflows/${encodeURIComponent(done.id)}` }, "open it"),
          );
        } catch (failure) {
          deployed.textContent = failure.message;
          deployed.className = "error";
          button.disabled = false;
        }
      },
    },
    `Deploy ${graph.id}`,
  );
  result.append(button, deployed);
}
