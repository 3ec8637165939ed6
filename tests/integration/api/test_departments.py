"""Departments against a real worker: deployed through the workflows endpoint, read back;
an execution keeps the department context it started with; a department's node timeout
applies to nodes that set none; a call the called department does not allow is refused at
deploy and at run time; viewers read departments, editors may not deploy one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from waiting import until
from workers import WorkerProcess

from braidflow.cli import main


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def department(name: str, body: str = "") -> str:
    return f"kind: Department\nname: {name}\ndescription: tests\n{body}"


def greeting(dept: str, value: str) -> str:
    return department(dept, f"context: {{greeting: {value}, support_email: help@acme.test}}\n")


def waiting_at(worker: WorkerProcess, execution: str, node: str) -> bool:
    view = worker.api.execution(execution)
    return view.status == 200 and any(
        n["node_id"] == node and n["status"] == "waiting" for n in view.body["nodes"]
    )


def said(reply: Any) -> str:
    """What a refusal says: its error and each problem it lists."""
    return " ".join([reply.body["error"], *reply.body.get("problems", ())])


def deploy(worker: WorkerProcess, text: str, status: int = 201) -> dict[str, Any]:
    reply = worker.api.deploy(text)
    assert reply.status == status, reply
    return reply.body


def test_a_department_is_deployed_versioned_and_read_back(shared_worker: WorkerProcess) -> None:
    name = unique("support")
    workflow = unique("triage")
    assert deploy(shared_worker, greeting(name, "hello")) == {"department": name, "version": 1}
    assert deploy(shared_worker, greeting(name, "hello"), 200)["version"] == 1
    assert deploy(shared_worker, greeting(name, "hi"))["version"] == 2
    deploy(
        shared_worker,
        f"""
id: {workflow}
department: {name}
nodes:
  - {{id: done, type: end, params: {{output: {{to: "${{dept.support_email}}"}}}}}}
edges: []
""",
    )
    shown = shared_worker.api.get(f"/departments/{name}")
    assert shown.status == 200, shown
    assert shown.body["version"] == 2
    assert shown.body["workflows"] == [workflow]
    assert shown.body["context"] == {"greeting": "hi", "support_email": "help@acme.test"}
    assert shown.body["allow_callers"] == []
    listed = shared_worker.api.get("/departments").body["departments"]
    assert name in {d["name"] for d in listed}
    assert shared_worker.api.get(f"/departments/{unique('none')}").status == 404
    audited = until(
        lambda: shared_worker.api.get(f"/audit?target={name}").body["records"],
        what="the department's deploys in the audit log",
    )
    assert {r["target"].get("department") for r in audited} == {name}, audited


def test_a_bad_department_is_refused_naming_the_field(shared_worker: WorkerProcess) -> None:
    reply = shared_worker.api.deploy(department(unique("d"), "settings: {node_timeout: soon}\n"))
    assert reply.status == 400, reply
    assert "settings.node_timeout: 'soon'" in said(reply), reply


def test_an_execution_keeps_the_context_it_started_with(shared_worker: WorkerProcess) -> None:
    name = unique("support")
    workflow = unique("greeter")
    deploy(shared_worker, greeting(name, "old"))
    body = deploy(
        shared_worker,
        f"""
id: {workflow}
department: {name}
nodes:
  - {{id: ask, type: approval, params: {{message: "go?", choices: [go]}}}}
  - {{id: done, type: end, params: {{output: {{said: "${{dept.greeting}}", also: "${{dept.nope}}"}}}}}}
edges:
  - {{from: ask, to: done}}
""",
    )
    assert any("dept.nope" in w for w in body["warnings"]), body
    # The same workflow without the unknown name, so it completes.
    deploy(
        shared_worker,
        f"""
id: {workflow}
department: {name}
nodes:
  - {{id: ask, type: approval, params: {{message: "go?", choices: [go]}}}}
  - {{id: done, type: end, params: {{output: {{said: "${{dept.greeting}}"}}}}}}
edges:
  - {{from: ask, to: done}}
""",
    )
    before = shared_worker.api.start(workflow, {})
    until(lambda: waiting_at(shared_worker, before, "ask"), what="the first execution waits")
    deploy(shared_worker, greeting(name, "new"))
    after = shared_worker.api.start(workflow, {})
    until(lambda: waiting_at(shared_worker, after, "ask"), what="the second execution waits")
    for execution in (before, after):
        decided = shared_worker.api.post_json(
            f"/executions/{execution}/approvals/ask", {"choice": "go"}
        )
        assert decided.status == 200, decided
    views = shared_worker.wait_until_finished([before, after])
    assert views[before]["output"] == {"said": "old"}, views[before]
    assert views[after]["output"] == {"said": "new"}, views[after]


def test_a_department_node_timeout_applies_to_nodes_that_set_none(
    shared_worker: WorkerProcess,
) -> None:
    name = unique("ops")
    workflow = unique("sleepy")
    deploy(shared_worker, department(name, "settings: {node_timeout: 300ms}\n"))
    deploy(
        shared_worker,
        f"""
id: {workflow}
department: {name}
nodes:
  - {{id: nap, type: task, params: {{handler: test.slow, input: {{seconds: 20, value: 1}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: nap, to: done}}
""",
    )
    execution = shared_worker.api.start(workflow, {})
    view = shared_worker.wait_until_finished([execution])[execution]
    assert view["status"] == "failed", view
    # The engine's timer (Timeout) or the executor's own cut-off (TimeoutError), whichever
    # comes first; without the department's default the task would complete after 20 s.
    error = view["error"]
    assert (error["type"], error["node_id"]) in {("Timeout", "nap"), ("TimeoutError", "nap")}, view


def test_a_call_the_called_department_does_not_allow_is_refused(
    shared_worker: WorkerProcess,
) -> None:
    billing, sales = unique("billing"), unique("sales")
    callee, caller = unique("invoice"), unique("order")
    deploy(
        shared_worker,
        f"id: {callee}\ndepartment: {billing}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n",
    )
    calling = f"""
id: {caller}
department: {sales}
nodes:
  - {{id: bill, type: subworkflow, params: {{workflow: {callee}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: bill, to: done}}
"""
    # The called department is not deployed yet: nothing to check, the deploy stands.
    deploy(shared_worker, calling)
    deploy(shared_worker, department(billing, "allow_callers: [finance]\n"))
    execution = shared_worker.api.start(caller, {})
    view = shared_worker.wait_until_finished([execution])[execution]
    assert view["status"] == "failed", view
    bill = next(n for n in view["nodes"] if n["node_id"] == "bill")
    assert bill["error"]["type"] == "DepartmentRefused", bill
    assert sales in bill["error"]["message"] and billing in bill["error"]["message"], bill
    # Now knowable at deploy time: a changed caller is refused, naming the node and both.
    refused = shared_worker.api.deploy(calling.replace("type: end}", "type: end, name: x}"))
    assert refused.status == 400, refused
    assert "node 'bill'" in said(refused) and sales in said(refused), refused
    assert billing in said(refused), refused
    deploy(shared_worker, department(billing, f"allow_callers: [{sales}]\n"))
    allowed = shared_worker.api.start(caller, {})
    assert shared_worker.wait_until_finished([allowed])[allowed]["status"] == "completed"


def test_a_viewer_reads_departments_and_an_editor_may_not_deploy_one(
    shared_worker: WorkerProcess,
) -> None:
    name = unique("people")
    deploy(shared_worker, greeting(name, "hello"))
    viewer = shared_worker.api.as_new_key("viewer", unique("vera"))
    assert viewer.get(f"/departments/{name}").status == 200
    assert viewer.get("/departments").status == 200
    editor = shared_worker.api.as_new_key("editor", unique("ed"))
    refused = editor.deploy(greeting(name, "changed"))
    assert refused.status == 403 and "owner" in refused.body["error"], refused
    assert shared_worker.api.get(f"/departments/{name}").body["context"]["greeting"] == "hello"


def test_the_command_line_deploys_a_department_and_names_it(
    shared_worker: WorkerProcess, tmp_path: Path
) -> None:
    name = unique("legal")
    path = tmp_path / "legal.yaml"
    path.write_text(greeting(name, "hello"))
    ran = CliRunner(env={"BRAIDFLOW_API_KEY": shared_worker.api.key}).invoke(
        main, ["deploy", str(path), "--api", shared_worker.api.base_url]
    )
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == f"{path}: deployed {name} version 1"
