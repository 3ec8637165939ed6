"""The dashboard in a real browser (chromium, Playwright) against a real worker: sign in, start
an execution and watch it turn green, approve from the inbox, redrive a dead letter with a
patched input, a workflow drafted from a sentence and deployed, and a viewer who sees no
buttons."""

from __future__ import annotations

import json
import re
import uuid

from dashboard_browser import sign_in
from playwright.sync_api import Browser, Page, expect
from waiting import until
from workers import SHARED_CHAT_CONNECTION, SUITE_OWNER, WorkerApi, WorkerProcess

from braidflow.client_cli import quote_id
from braidflow.connectors.demo_services import MODEL_CONNECTION
from braidflow.engine.trace_context import ExecutionTrace

CHAIN = """
id: {id}
nodes:
  - {{id: first, type: task, params: {{handler: test.slow, input: {{value: "${{input.value}}", seconds: 3}}}}}}
  - {{id: second, type: task, params: {{handler: test.echo}}}}
  - {{id: done, type: end, params: {{output: {{value: "${{nodes.first.output.value}}"}}}}}}
edges:
  - {{from: first, to: second}}
  - {{from: second, to: done}}
"""
# The chain with a model answering in the middle (llm_server.py): tokens for the cost line.
SPOKEN = CHAIN.replace(
    "{{id: second, type: task, params: {{handler: test.echo}}}}",
    "{{id: second, type: llm, params: {{connection: "
    + SHARED_CHAT_CONNECTION
    + ', model: tiny-1, prompt: "dash-cost | text:Hello there"}}}}',
)
APPROVAL = """
id: {id}
nodes:
  - {{id: ask, type: approval, params: {{message: "Ship order {tag}?", choices: [ship, hold],
      input: {{type: object, required: [reason], properties: {{reason: {{type: string}}}}}}}}}}
  - {{id: shipped, type: end, params: {{output: {{reason: "${{nodes.ask.output.data.reason}}"}}}}}}
edges:
  - {{from: ask, to: shipped}}
"""
FRAGILE = """
id: {id}
nodes:
  - {{id: check, type: task, params: {{handler: test.strict, input: {{fixed: false}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: check, to: done}}
"""


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def deployed(api: WorkerApi, text: str, **names: str) -> str:
    workflow = unique("dash")
    reply = api.deploy(text.format(id=workflow, **names))
    assert reply.status == 201, reply
    return workflow


def test_signing_in_shows_who_and_the_workflows(page: Page, shared_worker: WorkerProcess) -> None:
    api = shared_worker.api
    workflow = deployed(api, CHAIN)
    page.goto(f"{api.base_url}/")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    page.fill("#credential", "bfk_not_a_key_of_this_cluster")
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("did not accept")
    sign_in(page, api.base_url, str(api.key))
    expect(page.locator("#who")).to_contain_text(f"{SUITE_OWNER} · owner")
    expect(page.get_by_role("link", name=workflow)).to_be_visible()
    # The key stays in this tab's sessionStorage, never in the address.
    assert page.evaluate("sessionStorage.getItem('braidflow.credential')") == api.key
    assert str(api.key) not in page.url


def test_an_execution_started_from_the_dashboard_turns_green(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    workflow = deployed(api, SPOKEN)
    sign_in(page, api.base_url, str(api.key), f"#/workflows/{workflow}")
    expect(page.locator("#graph [data-node]")).to_have_count(3)
    page.fill("#start-input", json.dumps({"value": "green"}))
    page.click("[data-action=start]")
    page.wait_for_url(re.compile(r"#/executions/"))
    # Seen while it runs (the first node takes 3 s), then turning green without a reload.
    expect(page.locator('#graph [data-node="first"]')).to_have_attribute("data-state", "running")
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "completed"
    )
    for node in ("first", "second", "done"):
        expect(page.locator(f'#graph [data-node="{node}"]')).to_have_attribute(
            "data-state", "completed"
        )
    expect(page.locator(".timeline .lane")).to_have_count(3)
    # A node's input beside its output: the request its task was sent.
    page.click('#graph [data-node="first"]')
    detail = page.locator("#node-detail")
    expect(detail.locator('[data-part="input"]')).to_contain_text('"seconds": 3')
    expect(detail.locator('[data-part="output"]')).to_contain_text('"value": "green"')
    execution_id = page.url.rsplit("/", 1)[1]
    assert api.execution(execution_id).body["output"] == {"value": "green"}
    # Its trace id, to look the execution up in a tracing backend.
    trace_id = ExecutionTrace.of(execution_id, None).trace_id
    expect(page.locator("#execution-trace")).to_have_text(trace_id)
    # What it used, as the API adds it up: the model's tokens, run time by kind, attempts.
    cost = api.execution(execution_id).body["cost"]
    used = cost["tokens"]["tiny-1"]
    spent = page.locator("#execution-cost")
    expect(spent.locator('[data-part="money"]')).to_have_text("0")
    expect(spent.locator('[data-part="tokens"][data-model="tiny-1"]')).to_have_text(
        f"tiny-1: {used['total_tokens']} tokens"
        f" ({used['prompt_tokens']} in, {used['completion_tokens']} out)"
    )
    expect(spent.locator('[data-part="http-calls"]')).to_have_text("0 http calls")
    expect(spent.locator('[data-part="run-ms"]')).to_have_text(
        ", ".join(f"{kind} {ms} ms" for kind, ms in cost["run_ms"].items())
    )
    expect(spent.locator('[data-part="attempts"]')).to_have_text("2 attempts, 0 retries")
    # The analytics table adds the same tokens up for the workflow.
    until(
        lambda: any(
            b.get("tokens")
            for b in api.get(f"/stats?workflow={workflow}&window=1m").body["buckets"]
        ),
        "the model's tokens in the workflow's figures",
    )
    page.goto(f"{api.base_url}/#/stats")
    figures = page.locator(f'section.chart[data-name="{workflow}"]')
    expect(figures.locator('[data-figure="tokens"]')).to_have_text(str(used["total_tokens"]))
    expect(figures.locator('[data-figure="cost"]')).to_have_text("0")


def test_approving_from_the_inbox_lets_the_execution_go_on(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    tag = uuid.uuid4().hex[:6]
    workflow = deployed(api, APPROVAL, tag=tag)
    execution_id = api.start(workflow, {})
    until(
        lambda: any(
            a["execution_id"] == execution_id for a in api.get("/approvals").body["approvals"]
        ),
        "the approval in the inbox",
    )
    sign_in(page, api.base_url, str(api.key), "#/approvals")
    card = page.locator(f'article.approval[data-execution="{execution_id}"]')
    expect(card).to_contain_text(f"Ship order {tag}?")
    # The reply form its schema asks for, and the node's own choices.
    card.locator('input[name="reason"]').fill("customer waited long enough")
    expect(card.locator("[data-choice]")).to_have_count(2)
    card.locator('[data-choice="ship"]').click()
    expect(card.locator(".decided")).to_contain_text("Answered ship")
    card.get_by_role("link", name="follow the execution").click()
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "completed"
    )
    expect(page.locator('#graph [data-node="shipped"]')).to_have_attribute(
        "data-state", "completed"
    )
    view = api.execution(execution_id).body
    assert view["output"] == {"reason": "customer waited long enough"}, view


def test_a_dead_letter_redriven_with_a_patched_input_completes(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    workflow = deployed(api, FRAGILE)
    execution_id = api.start(workflow, {})

    def letter() -> str | None:
        found = api.get(f"/dead-letters?workflow={workflow}&kind=node").body["dead_letters"]
        return next((d["id"] for d in found if d["execution_id"] == execution_id), None)

    letter_id = until(letter, "the failed node's dead letter")
    sign_in(page, api.base_url, str(api.key), "#/dead-letters")
    card = page.locator(f'article.dead-letter[data-id="{letter_id}"]')
    expect(card).to_contain_text("input not fixed")
    card.locator("textarea").fill(json.dumps({"fixed": True}))
    card.locator("[data-action=redrive]").click()
    expect(card.locator(".decided")).to_contain_text("Redriven")
    card.get_by_role("link", name="follow the execution").click()
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "completed"
    )
    redriven = api.get(f"/dead-letters?workflow={workflow}&kind=node").body["dead_letters"]
    assert [d["redriven_at"] is not None for d in redriven if d["id"] == letter_id] == [True]
    assert quote_id(letter_id)  # the id the page posted to, as the CLI quotes it


def test_a_viewer_sees_no_buttons_an_operator_does(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    approval = deployed(api, APPROVAL, tag="viewer")
    fragile = deployed(api, FRAGILE)
    waiting = api.start(approval, {})
    failed = api.start(fragile, {})
    until(
        lambda: any(a["execution_id"] == waiting for a in api.get("/approvals").body["approvals"]),
        "the approval in the inbox",
    )
    until(
        lambda: api.get(f"/dead-letters?workflow={fragile}").body["dead_letters"],
        "the dead letter",
    )
    assert api.deploy(APPROVAL.format(id=approval, tag="second")).status == 201
    pages = (
        f"#/workflows/{approval}",
        f"#/executions/{waiting}",
        "#/approvals",
        "#/dead-letters",
    )
    buttons = "[data-action], [data-choice]"

    def seen(key: str) -> list[int]:
        counts = []
        sign_in(page, api.base_url, key, pages[0])
        for hash_ in pages:
            page.goto(f"{api.base_url}/{hash_}")
            page.wait_for_selector("#page h1")
            # The page's data is in: the graph, the approval's card, the letter's card.
            if hash_.startswith("#/workflows") or hash_.startswith("#/executions"):
                page.wait_for_selector("#graph [data-node]")
            elif hash_ == "#/approvals":
                page.wait_for_selector(f'article.approval[data-execution="{waiting}"]')
            else:
                page.wait_for_selector("article.dead-letter")
            counts.append(page.locator(buttons).count())
        page.click("#sign-out")
        page.wait_for_selector("#sign-in:not([hidden])")
        return counts

    operator = api.as_new_key("operator", unique("dash-operator")).key
    viewer = api.as_new_key("viewer", unique("dash-viewer")).key
    # The operator starts, pauses or cancels, decides and redrives; an editor would roll back.
    assert all(count > 0 for count in seen(str(operator)))
    assert seen(str(viewer)) == [0, 0, 0, 0]
    assert failed


def test_an_editor_diffs_two_versions_and_rolls_back(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    workflow = deployed(api, CHAIN)
    changed = CHAIN.format(id=workflow).replace(
        "{id: second, type: task,", "{id: second, type: task, name: Echo it,"
    )
    assert api.deploy(changed).status == 201
    editor = api.as_new_key("editor", unique("dash-editor")).key
    sign_in(page, api.base_url, str(editor), f"#/workflows/{workflow}")
    page.click("form.inline button[type=submit]")
    expect(page.locator("#diff")).to_contain_text("changed: second")
    expect(page.locator('#graph [data-node="second"]')).to_have_class(re.compile(r"\bchanged\b"))
    expect(page.locator("pre.diff .plus")).to_contain_text(["+++", "name: Echo it"])
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("[data-action=rollback]")
    expect(page.locator("table").first).to_contain_text("restores v1")
    versions = api.get(f"/workflows/{workflow}/versions").body["versions"]
    assert [(v["version"], v["restores"]) for v in versions] == [(1, None), (2, None), (3, 1)]


def test_on_a_phone_nothing_is_wider_than_the_screen(
    browser: Browser, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    workflow = deployed(api, APPROVAL, tag="phone")
    execution_id = api.start(workflow, {})
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = context.new_page()
        sign_in(phone, api.base_url, str(api.key), f"#/workflows/{workflow}")
        for hash_ in (f"#/workflows/{workflow}", f"#/executions/{execution_id}", "#/approvals"):
            phone.goto(f"{api.base_url}/{hash_}")
            phone.wait_for_selector("#page[data-ready]")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (hash_, overflow)
    finally:
        context.close()


def test_an_operator_pauses_resumes_and_cancels_an_execution(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    workflow = deployed(api, APPROVAL, tag="controls")
    execution_id = api.start(workflow, {})
    until(
        lambda: any(n["status"] == "waiting" for n in api.execution(execution_id).body["nodes"]),
        "the execution to wait at its approval",
    )
    operator = api.as_new_key("operator", unique("dash-controls")).key
    sign_in(page, api.base_url, str(operator), f"#/executions/{execution_id}")
    expect(page.locator('#graph [data-node="ask"]')).to_have_attribute("data-state", "waiting")
    page.click("[data-action=pause]")
    expect(page.locator(".badge.status-paused")).to_be_visible()
    page.click("[data-action=resume]")
    expect(page.locator("[data-action=pause]")).to_be_visible()
    expect(page.locator(".badge.status-paused")).to_have_count(0)
    page.click("[data-action=cancel]")
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "cancelled"
    )
    expect(page.locator("[data-action]")).to_have_count(0)
    actions = [c["action"] for c in api.execution(execution_id).body["control"]]
    assert actions[:3] == ["pause", "resume", "cancel"], actions


WAITER = """
id: {id}
nodes:
  - {{id: wait, type: wait_event, params: {{type: "{kind}", correlate: "event.data.order == input.order"}}, timeout: 1h}}
  - {{id: done, type: end}}
edges:
  - {{from: wait, to: done}}
"""


def test_the_event_bus_shows_the_execution_an_event_resumed(
    page: Page, shared_worker: WorkerProcess
) -> None:
    api = shared_worker.api
    kind = f"dash{uuid.uuid4().hex[:8]}.delivered"
    workflow = deployed(api, WAITER, kind=kind)
    execution_id = api.start(workflow, {"order": 3})
    until(
        lambda: any(n["status"] == "waiting" for n in api.execution(execution_id).body["nodes"]),
        "the execution to wait for its event",
    )
    event_id = unique("delivery")
    event = {"specversion": "1.0", "id": event_id, "source": "/van", "type": kind}
    assert api.post_json("/events", {**event, "data": {"order": 3}}).status == 202
    until(
        lambda: any(
            e["id"] == event_id and e["resumed"] for e in api.get("/event-bus").body["events"]
        ),
        "the resumption in the execution index",
    )
    sign_in(page, api.base_url, str(api.key), "#/events")
    row = page.locator(f'section[data-type="{kind}"] tr[data-event="{event_id}"]')
    expect(row.locator(f'[data-part="resumed"] [data-execution="{execution_id}"]')).to_contain_text(
        f"{workflow} at wait"
    )
    expect(row.locator('[data-part="started"] li')).to_have_count(0)


SENTENCE = (
    "When a high-priority ticket arrives, classify it, ask the on-call lead to approve"
    " the reply, then send it"
)


def test_an_editor_drafts_a_workflow_from_a_sentence_and_deploys_it_a_viewer_cannot(
    page: Page, shared_worker: WorkerProcess
) -> None:
    """The test chat server plays the model (llm_server.py): a broken answer, then the
    sentence as classify, llm, approval and email. Dev mode's stand-in says it cannot."""
    api = shared_worker.api
    editor = api.as_new_key("editor", unique("dash-drafter")).key
    sign_in(page, api.base_url, str(editor), "#/draft")
    page.fill("#draft-sentence", SENTENCE)
    page.fill("#draft-model", "tiny-1")
    # Dev mode's stand-in model cannot draft, and the page says so in its words.
    page.fill("#draft-connection", MODEL_CONNECTION)
    page.click("[data-action=draft]")
    expect(page.get_by_role("alert")).to_contain_text("did not draft: this is braidflow dev's")
    page.fill("#draft-connection", SHARED_CHAT_CONNECTION)
    ticket = {"subject": "Invoice", "body": "Where is it?", "customer_email": "ada@example.test"}
    page.fill("#draft-input", json.dumps(ticket))
    page.click("[data-action=draft]")
    expect(page.locator("#draft-rounds")).to_contain_text("Round 1: 2 problem(s) sent back")
    definition = page.locator("#draft-definition")
    for shown in ("id: ticket-reply", "type: classify", "type: approval", "type: email"):
        expect(definition).to_contain_text(shown)
    expect(page.locator('#draft-graph [data-node="approve"]')).to_be_visible()
    expect(page.locator("#draft-dry-run")).to_have_attribute("data-status", "completed")
    assert api.get("/workflows/ticket-reply").status == 404  # nothing deployed yet
    page.click("[data-action=deploy]")
    expect(page.locator("#draft-deployed")).to_contain_text("Deployed ticket-reply version 1")
    assert api.get("/workflows/ticket-reply").body["version"] == 1
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")

    viewer = api.as_new_key("viewer", unique("dash-viewer")).key
    sign_in(page, api.base_url, str(viewer), "#/draft")
    expect(page.locator("#draft-refused")).to_be_visible()
    assert page.locator("#draft-sentence, [data-action=deploy]").count() == 0
