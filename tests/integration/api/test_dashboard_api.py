"""What the dashboard asks of a real worker besides the rest of the API: who is signed in
(`/me`), a workflow's graph laid out, the department map, the event bus, and its own files at `/` and
`/ui/...` served without a credential."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

from waiting import until
from workers import SUITE_OWNER, WorkerProcess

from braidflow.schemas.cloudevents import CloudEvent, to_structured
from braidflow.topology import load_workflow
from braidflow.topology.layout import layout


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET `url` with no credential at all: status, headers, body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def test_me_names_the_credential_its_tenant_and_roles(shared_worker: WorkerProcess) -> None:
    owner = shared_worker.api.get("/me")
    assert owner.status == 200, owner
    assert owner.body == {
        "name": SUITE_OWNER,
        "tenant": "default",
        "roles": [{"role": "owner", "department": None}],
    }
    name = unique("support-viewer")
    viewer = shared_worker.api.as_new_key("viewer", name, "support").get("/me")
    assert viewer.body == {
        "name": name,
        "tenant": "default",
        "roles": [{"role": "viewer", "department": "support"}],
    }
    anonymous = shared_worker.api.with_key(None).get("/me")
    assert anonymous.status == 401 and anonymous.body["field"] == "Authorization", anonymous


APPROVAL = """
id: {id}
nodes:
  - {{id: ask, type: approval, params: {{message: "ok?", choices: [ship, hold],
      input: {{type: object, required: [reason], properties: {{reason: {{type: string}}}}}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: ask, to: done}}
"""


def test_the_graph_is_the_layout_of_the_version_asked_for(shared_worker: WorkerProcess) -> None:
    api = shared_worker.api
    workflow = unique("graphed")
    first = APPROVAL.format(id=workflow)
    second = first.replace("  - {id: done, type: end}", "  - {id: done, type: end, name: Done}")
    for text in (first, second):
        assert api.deploy(text).status == 201
    latest = api.get(f"/workflows/{workflow}/graph")
    assert latest.status == 200, latest
    expected = layout(load_workflow(second).definition).as_json()
    assert {k: v for k, v in latest.body.items() if k != "nodes"} == {
        "id": workflow,
        "version": 2,
        "department": None,
        **{k: v for k, v in expected.items() if k != "nodes"},
    }
    ask = latest.body["nodes"][0]
    assert ask["choices"] == ["ship", "hold"]
    assert ask["reply_schema"]["required"] == ["reason"]
    assert latest.body["nodes"][1]["name"] == "Done"
    older = api.get(f"/workflows/{workflow}/graph?version=1")
    assert (older.body["version"], older.body["nodes"][1]["name"]) == (1, None)
    assert api.get(f"/workflows/{workflow}/graph?version=3").status == 404
    bad = api.get(f"/workflows/{workflow}/graph?version=two")
    assert (bad.status, bad.body["field"]) == (400, "version"), bad
    assert api.get(f"/workflows/{unique('absent')}/graph").status == 404


def test_the_map_links_a_caller_to_the_workflow_it_calls(shared_worker: WorkerProcess) -> None:
    api = shared_worker.api
    child, parent = unique("child"), unique("parent")
    assert (
        api.deploy(f"id: {child}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n").status == 201
    )
    text = (
        f"id: {parent}\nnodes:\n  - {{id: call, type: subworkflow, params: {{workflow: {child}}}}}\n"
        "  - {id: done, type: end}\nedges:\n  - {from: call, to: done}\n"
    )
    assert api.deploy(text).status == 201, text
    shared_worker.wait_until_finished([api.start(child, {})])

    def child_ended() -> Any:
        found = api.get("/map")
        assert found.status == 200, found
        ended = [n for n in found.body["nodes"] if n["id"] == child and n["ended"]]
        return found if ended else None

    shown = until(child_ended, "the child's execution in the map's success rate")
    edges = [(e["source"], e["target"], e["kind"]) for e in shown.body["edges"]]
    assert (parent, child, "calls") in edges
    nodes = {n["id"]: n for n in shown.body["nodes"]}
    assert nodes[child]["ended"] >= 1 and nodes[child]["success_rate"] == 1.0, nodes[child]
    assert nodes[parent]["success_rate"] is None
    assert nodes[parent]["layer"] < nodes[child]["layer"]


def test_the_dashboard_files_are_served_without_a_credential(shared_worker: WorkerProcess) -> None:
    base = shared_worker.api.base_url
    status, headers, body = fetch(f"{base}/")
    assert status == 200 and b'<script type="module" src="/ui/app.js">' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = fetch(f"{base}/ui/app.js")
    assert status == 200 and "javascript" in headers["Content-Type"], headers
    assert b"import" in body
    # A page's own path gets the index; a missing file and a path out of the folder do not.
    assert fetch(f"{base}/ui/approvals")[0] == 200
    assert fetch(f"{base}/ui/missing.js")[0] == 404
    assert fetch(f"{base}/ui/..%2F..%2Fpyproject.toml")[0] == 404
    assert b"[project]" not in fetch(f"{base}/ui/../../pyproject.toml")[2]


WAITS_FOR = """
id: {id}
department: support
nodes:
  - {{id: wait, type: wait_event, params: {{type: "{kind}", correlate: "event.data.order == input.order"}}, timeout: 1h}}
  - {{id: done, type: end}}
edges:
  - {{from: wait, to: done}}
"""
STARTED_BY = """
id: {id}
triggers:
  - {{event: {{types: ["{kind}"]}}}}
nodes:
  - {{id: done, type: end}}
edges: []
"""


def test_the_event_bus_lists_what_an_event_started_and_what_it_resumed(
    shared_worker: WorkerProcess,
) -> None:
    """One event starts an execution of no department and resumes a waiting support
    execution; a support viewer sees the resumption and not the start, a finance viewer
    neither."""
    api = shared_worker.api
    kind = f"bus{uuid.uuid4().hex[:8]}.paid"
    waiter, starter = unique("waiter"), unique("starter")
    assert api.deploy(WAITS_FOR.format(id=waiter, kind=kind)).status == 201
    assert api.deploy(STARTED_BY.format(id=starter, kind=kind)).status == 201
    waiting = api.start(waiter, {"order": 7})

    def waits() -> bool:
        nodes = api.execution(waiting).body.get("nodes", [])
        return any(n["node_id"] == "wait" and n["status"] == "waiting" for n in nodes)

    until(waits, "the wait node waiting")
    event = CloudEvent(id=unique("pay"), source="/shop", type=kind, data={"order": 7})
    published = api.request("POST", "/events", to_structured(event)[1], "application/json")
    assert published.status == 202, published
    assert shared_worker.wait_until_finished([waiting])[waiting]["status"] == "completed"

    def listed(caller: Any, parts: tuple[str, ...]) -> Any:
        reply = caller.get("/event-bus")
        assert reply.status == 200, reply
        found = [e for e in reply.body["events"] if e["id"] == event.id]
        if not found or not all(found[0][part] for part in parts):
            return None
        # A resumption shows its execution's status as the read model has it, which may
        # still be behind the execution's own view under load.
        resumed = found[0].get("resumed") or []
        return found[0] if all(r["status"] == "completed" for r in resumed) else None

    shown = until(lambda: listed(api, ("started", "resumed")), "the event's start and resumption")
    assert (shown["type"], shown["source"]) == (kind, "/shop")
    [resumed] = shown["resumed"]
    assert (resumed["execution_id"], resumed["workflow_id"], resumed["node_id"]) == (
        waiting,
        waiter,
        "wait",
    )
    assert resumed["status"] == "completed"
    assert [s["workflow_id"] for s in shown["started"]] == [starter]
    support = api.as_new_key("viewer", unique("support-viewer"), "support")
    seen = until(lambda: listed(support, ("resumed",)), "the resumption, to a support viewer")
    assert seen["started"] == [] and seen["resumed"][0]["execution_id"] == waiting
    finance = api.as_new_key("viewer", unique("finance-viewer"), "finance")
    assert listed(finance, ()) is None
    bad = api.get("/event-bus?limit=0")
    assert (bad.status, bad.body["field"]) == (400, "limit"), bad
