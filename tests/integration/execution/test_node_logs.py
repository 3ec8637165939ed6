"""Logs per execution against a real worker: what the task handlers log (`context.log` and the
standard `logging`, from an async handler and from a plain `def` one in its thread) comes
back per node run and attempt, through the API and `braidflow logs`; a retried node shows
each attempt; a flood of lines is cut and says so; a secret a handler logs is found neither
in the answers, nor on the logs topic, nor in the worker's console; another tenant's key
finds no such execution."""

from __future__ import annotations

import json
import uuid
from typing import Any

from click.testing import CliRunner
from topic_records import TopicReader
from waiting import until
from workers import HELPDESK_TOKEN, WorkerProcess, make_key

from braidflow.access import Role
from braidflow.cli import main
from braidflow.node_logs import MAX_LINES

FLOOD = MAX_LINES + 100
# A department of its own that lists the `helpdesk` credential: the suite's shared worker may
# hold the example department `support`, whose credential it is, and then a workflow of no
# department may not read it (CI met that order once).
DEPARTMENT = """
kind: Department
name: {name}
description: logs per execution
credentials: [helpdesk]
"""
WORKFLOW = """
id: {id}
department: {department}
nodes:
  - id: talk
    type: task
    params: {{handler: test.chatty, input: {{succeed_at: 2}}}}
    retry: {{max_attempts: 2, initial: 100ms}}
  - {{id: sync, type: task, params: {{handler: test.chatty_sync}}}}
  - {{id: flood, type: task, params: {{handler: test.chatty, input: {{lines: {flood}}}}}}}
  - {{id: quiet, type: task, params: {{handler: test.echo, input: {{x: 1}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: talk, to: sync}}
  - {{from: sync, to: flood}}
  - {{from: flood, to: quiet}}
  - {{from: quiet, to: done}}
"""
SAID = "calling the helpdesk with"


def messages(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(line["level"], line["message"]) for line in run["lines"]]


def test_handlers_lines_come_back_per_node_run_cut_redacted_and_only_to_their_tenant(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    workflow = f"logs-{uuid.uuid4().hex[:8]}"
    department = f"logs{uuid.uuid4().hex[:8]}"
    assert api.deploy(DEPARTMENT.format(name=department)).status == 201
    deployed = api.deploy(WORKFLOW.format(id=workflow, department=department, flood=FLOOD))
    assert deployed.status == 201, deployed
    execution_id = api.start(workflow, {})
    view = shared_worker.wait_until_finished([execution_id], timeout_s=60)[execution_id]
    assert view["status"] == "completed", [(n["node_id"], n.get("error")) for n in view["nodes"]]

    reply = api.get(f"/executions/{execution_id}/logs")
    assert reply.status == 200, reply
    runs = reply.body["logs"]
    assert [(r["node_id"], r["attempt"], r["item"]) for r in runs] == [
        ("talk", 1, None),
        ("talk", 2, None),
        ("sync", 1, None),
        ("flood", 1, None),
    ], runs
    redacted = f"{SAID} [secrets.helpdesk]"
    for attempt, run in enumerate(runs[:2], start=1):
        assert messages(run) == [("info", f"attempt {attempt} begins"), ("warning", redacted)]
        assert (run["cut"], run["cut_lines"]) == (False, 0)
    assert messages(runs[2]) == [
        ("warning", "in a thread"),
        ("info", "standard logging from the thread of sync"),
    ]
    flood = runs[3]
    # The first and the last half of the bounds are kept, a line between says what was cut.
    cut = FLOOD + 2 - MAX_LINES
    half = MAX_LINES // 2
    assert len(flood["lines"]) == MAX_LINES + 1, len(flood["lines"])
    assert flood["lines"][half - 1]["message"] == f"line {half - 3}"
    assert flood["lines"][half]["message"] == f"(cut: {cut} lines not kept here)"
    assert flood["lines"][-1]["message"] == f"line {FLOOD - 1}"
    assert (flood["cut"], flood["cut_lines"]) == (True, cut)
    assert all(line["at"].endswith("Z") for run in runs for line in run["lines"])

    printed = CliRunner().invoke(
        main, ["logs", execution_id, "--api", api.base_url, "--api-key", str(api.key)]
    )
    assert printed.exit_code == 0, printed.output
    out = printed.output.splitlines()
    assert out[:3] == [
        "talk (attempt 1):",
        f"  {runs[0]['lines'][0]['at']}  info     attempt 1 begins",
        f"  {runs[0]['lines'][1]['at']}  warning  {redacted}",
    ]
    assert "talk (attempt 2):" in out and "sync (attempt 1):" in out
    assert out[-1].endswith(f"line {FLOOD - 1}")
    assert sum(line.endswith(f"(cut: {cut} lines not kept here)") for line in out) == 1

    token = HELPDESK_TOKEN.encode()
    assert token not in json.dumps(reply.body).encode() and token not in printed.stdout_bytes
    with TopicReader(shared_worker.broker, f"{shared_worker.prefix}.logs") as reader:
        ours = [r for r in reader.read_to_end() if r.key == execution_id.encode()]
    assert len(ours) == 4 and all(token not in (r.value or b"") for r in ours)
    console = [line for line in shared_worker.log().splitlines() if SAID in line]
    assert console and all(redacted in line for line in console), console

    tenant = f"logs{uuid.uuid4().hex[:8]}"
    other = api.with_key(
        make_key(shared_worker.broker, shared_worker.prefix, Role.OWNER, "o", None, tenant)
    )
    refused = until(
        lambda: (r := other.get(f"/executions/{execution_id}/logs")).status != 401 and r,
        "the worker to know the other tenant's key",
    )
    assert refused.status == 404, refused
