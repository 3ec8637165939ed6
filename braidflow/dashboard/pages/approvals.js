// The approvals inbox: what waits for an answer, with the node's choices and the reply
// form its schema asks for.
import { get, post } from "../api.js";
import { may } from "../access.js";
import { h, when } from "../dom.js";
import { schemaForm } from "../form.js";

export async function show(page, { me }) {
  const { approvals } = await get("/approvals");
  const graphs = new Map();
  const graphOf = (a) => {
    const key = `${a.workflow_id}@${a.workflow_version}`;
    if (!graphs.has(key)) {
      graphs.set(key, get(`/workflows/${encodeURIComponent(a.workflow_id)}/graph?version=${a.workflow_version}`));
    }
    return graphs.get(key);
  };
  page.append(h("h1", {}, "Approvals"));
  if (!approvals.length) {
    page.append(h("p", { id: "inbox-empty" }, "Nothing waits for an answer."));
    return;
  }
  for (const [index, approval] of approvals.entries()) {
    const graph = await graphOf(approval);
    const node = graph.nodes.find((n) => n.id === approval.node_id) || {};
    page.append(card(approval, node, may(me, "operator", graph.department), `approval-${index}`));
  }
}

function card(approval, node, decides, prefix) {
  const reply = schemaForm(node.reply_schema, prefix);
  const comment = h("input", { type: "text", name: "comment", "aria-label": "comment", placeholder: "comment (optional)" });
  const error = h("p", { class: "error", role: "alert" });
  const element = h(
    "article",
    { class: "card approval", "data-execution": approval.execution_id, "data-node": approval.node_id },
    h("h2", {}, approval.message || `${approval.node_id} waits for an answer`),
    h(
      "p",
      {},
      h("a", { href: `#/executions/${encodeURIComponent(approval.execution_id)}` }, approval.execution_id),
      ` · ${approval.workflow_id} v${approval.workflow_version} · node ${approval.node_id}`,
      ` · asked ${when(approval.requested_at)}`,
      approval.timeout_at ? ` · times out ${when(approval.timeout_at)}` : "",
    ),
  );
  if (!decides) return element;
  const decide = (choice) => async () => {
    error.textContent = "";
    try {
      const body = { choice, data: reply.value() };
      if (comment.value) body.comment = comment.value;
      await post(
        `/executions/${encodeURIComponent(approval.execution_id)}/approvals/${encodeURIComponent(approval.node_id)}`,
        body,
      );
      element.replaceChildren(
        h("p", { class: "decided" }, `Answered ${choice}: `,
          h("a", { href: `#/executions/${encodeURIComponent(approval.execution_id)}` }, "follow the execution")),
      );
    } catch (failure) {
      error.textContent = failure.message;
    }
  };
  element.append(
    reply.element || "",
    comment,
    h(
      "div",
      { class: "actions" },
      (approval.choices.length ? approval.choices : node.choices || []).map((choice) =>
        h("button", { "data-choice": choice, class: /^(reject|deny|no)/.test(choice) ? "danger" : "", onclick: decide(choice) }, choice),
      ),
    ),
    error,
  );
  return element;
}
