// The dashboard: sign-in, then pages chosen by the location's hash (#/workflows, ...).
// Plain ES modules the browser loads as they are: there is no build step.
import { ApiError, credential, get } from "./api.js";
import { h } from "./dom.js";
import * as approvals from "./pages/approvals.js";
import * as deadLetters from "./pages/dead_letters.js";
import * as draft from "./pages/draft.js";
import * as events from "./pages/events.js";
import * as execution from "./pages/execution.js";
import * as map from "./pages/map.js";
import * as stats from "./pages/stats.js";
import * as workflows from "./pages/workflows.js";

const ROUTES = [
  [/^#\/workflows\/([^/]+)$/, workflows.show],
  [/^#\/executions\/([^/]+)$/, execution.show],
  [/^#\/approvals$/, approvals.show],
  [/^#\/dead-letters$/, deadLetters.show],
  [/^#\/map$/, map.show],
  [/^#\/events$/, events.show],
  [/^#\/stats$/, stats.show],
  [/^#\/draft$/, draft.show],
  [/^#\/workflows$/, workflows.list],
];

const page = document.getElementById("page");
const form = document.getElementById("sign-in");
let me = null;
let leave = null;

async function signIn() {
  try {
    me = await get("/me");
  } catch (error) {
    me = null;
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    credential.clear();
    return false;
  }
  document.getElementById("who").textContent =
    `${me.name} · ${me.roles.map((r) => `${r.role}${r.department ? ` in ${r.department}` : ""}`).join(", ")}`;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  form.hidden = true;
  return true;
}

async function route() {
  if (leave) leave();
  leave = null;
  page.replaceChildren();
  // Set once the page has its data: what tests and the screenshot script wait for.
  delete page.dataset.ready;
  if (!me) {
    form.hidden = false;
    return;
  }
  const hash = location.hash || "#/workflows";
  for (const [pattern, render] of ROUTES) {
    const found = hash.match(pattern);
    if (!found) continue;
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("here", hash.startsWith(link.getAttribute("href")));
    }
    try {
      leave = await render(page, { me }, ...found.slice(1).map(decodeURIComponent));
    } catch (error) {
      page.append(h("p", { class: "error", role: "alert" }, error.message));
    }
    if (location.hash === hash || (!location.hash && hash === "#/workflows")) page.dataset.ready = "";
    return;
  }
  page.append(h("p", { class: "error" }, `no page ${hash}`));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const given = document.getElementById("credential").value.trim();
  credential.set(given);
  const error = document.getElementById("sign-in-error");
  error.textContent = "";
  if (await signIn()) {
    document.getElementById("credential").value = "";
    route();
  } else {
    error.textContent = "Not signed in: the API did not accept this key or token.";
  }
});

document.getElementById("sign-out").addEventListener("click", () => {
  credential.clear();
  location.reload();
});

window.addEventListener("hashchange", route);

// With authentication off (dev on 127.0.0.1) /me answers without a credential.
signIn()
  .catch(() => false)
  .then(route);
