"""Two workers with BRAIDFLOW_READ_MODEL set keep one history in PostgreSQL: either answers
the same executions and searches, a workflow's or across workflows (a bad search is a 400
naming its field), the same dead letters and redrives, and the same audit log."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerApi, WorkerProcess

ECHO = """
id: pg-echo
input:
  type: object
  required: [n, customer]
  properties:
    n: {type: integer}
    customer: {type: string}
nodes:
  - {id: echo, type: task, params: {handler: test.echo, input: {n: "${input.n}"}}}
  - id: done
    type: end
    params:
      output: {n: "${nodes.echo.output.n}"}
edges:
  - {from: echo, to: done}
"""
BOOM = """
id: pg-boom
nodes:
  - {id: explode, type: task, params: {handler: test.boom, input: {}}}
  - {id: done, type: end}
edges:
  - {from: explode, to: done}
"""
EXECUTIONS = 12


@pytest.fixture
def pair(
    broker: SuiteBroker, prefix: str, tmp_path: Path, read_model_url: str
) -> Iterator[list[WorkerProcess]]:
    """Two workers of one deployment, each with its own data dir, one read-model database."""
    env = {"BRAIDFLOW_READ_MODEL": read_model_url}
    workers = [
        WorkerProcess(broker, prefix, tmp_path / name / "data", tmp_path / f"{name}.log", env=env)
        for name in ("first", "second")
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in (*workers, *workers):
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def listed(worker: WorkerProcess, **query: str) -> list[str]:
    path = "/workflows/pg-echo/executions?" + urllib.parse.urlencode({"limit": 100, **query})
    reply = worker.api.get(path)
    assert reply.status == 200, reply
    return [e["execution_id"] for e in reply.body["executions"]]


def test_two_workers_sharing_one_database_show_and_search_the_same_history(
    pair: list[WorkerProcess], read_model_url: str, prefix: str
) -> None:
    first, second = pair
    assert first.api.deploy(ECHO).status == 201
    until(lambda: second.api.get("/workflows/pg-echo").status == 200, "the deployment")
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    ids = {
        pair[n % 2].api.start("pg-echo", {"n": n, "customer": "ada" if n < 3 else "bob"}): n
        for n in range(EXECUTIONS)
    }
    finished = first.wait_until_finished(ids, 60)
    assert all(view["status"] == "completed" for view in finished.values()), finished

    def both_list_all() -> bool:
        return all(set(listed(w, status="completed")) == set(ids) for w in pair)

    until(both_list_all, "both workers listing every execution completed")
    whole = [w.api.get("/workflows/pg-echo/executions?limit=100").body for w in pair]
    assert whole[0] == whole[1]
    assert len(whole[0]["executions"]) == EXECUTIONS
    with psycopg.connect(read_model_url) as conn:
        (stored,) = conn.execute(
            f'SELECT count(*) FROM "{prefix}_executions_index".executions'
        ).fetchone()
    assert stored == EXECUTIONS

    by_n = {n: execution_id for execution_id, n in ids.items()}
    for worker in pair:
        assert listed(worker, **{"input.n": "4"}) == [by_n[4]]
        assert set(listed(worker, **{"input.customer": "ada"})) == {by_n[0], by_n[1], by_n[2]}
        assert set(listed(worker, **{"from": before})) == set(ids)
        assert listed(worker, to=before) == []
        assert listed(worker, status="failed") == []
        assert listed(worker, event_type="order.placed") == []

    for name, value in [("input.a..b", "x"), ("from", "soon"), ("status", "lost")]:
        reply = second.api.get(f"/workflows/pg-echo/executions?{name}={value}")
        assert reply.status == 400, reply
        assert reply.body["field"] == name, reply


def test_two_workers_sharing_one_database_show_the_same_dead_letters_redrives_and_audit(
    pair: list[WorkerProcess], read_model_url: str, prefix: str
) -> None:
    first, second = pair
    assert first.api.deploy(BOOM).status == 201
    until(lambda: second.api.get("/workflows/pg-boom").status == 200, "the deployment")
    execution = second.api.start("pg-boom", {})
    assert first.wait_until_finished([execution], 60)[execution]["status"] == "failed"

    def letters(worker: WorkerProcess) -> list[dict[str, object]]:
        return list(worker.api.get("/dead-letters?workflow=pg-boom").body["dead_letters"])

    [letter] = until(lambda: letters(first), "the dead letter of `explode`")
    assert letters(second) == [letter]
    assert letter["execution_id"] == execution and letter["redriven_at"] is None
    redriven = first.api.post_json(f"/dead-letters/{letter['id']}/redrive", {})
    assert redriven.status == 202, redriven

    def marked_for_second() -> object:
        found = [d for d in letters(second) if d["id"] == letter["id"]]
        return found and found[0]["redriven_at"]

    until(marked_for_second, "the redrive seen through the other worker")

    def deploy_audited(worker: WorkerProcess) -> list[dict[str, object]]:
        records = worker.api.get("/audit?target=pg-boom").body["records"]
        return [r for r in records if r["action"] == "deploy"]

    [deployed] = until(lambda: deploy_audited(second), "the deploy in the audit log")
    assert deploy_audited(first) == [deployed]
    with psycopg.connect(read_model_url) as conn:
        (audited,) = conn.execute(
            f'SELECT count(*) FROM "{prefix}_audit_index".audit WHERE id = %s', (deployed["id"],)
        ).fetchone()
        (stored,) = conn.execute(
            f'SELECT count(*) FROM "{prefix}_dead_letters_index".dead_letters WHERE id = %s',
            (letter["id"],),
        ).fetchone()
    assert (audited, stored) == (1, 1)


SUPPORT = "kind: Department\nname: support\ndescription: searched across workflows\n"


def searched(worker: WorkerProcess, api: WorkerApi | None = None, **query: str) -> set[str]:
    path = "/executions?" + urllib.parse.urlencode({"limit": 100, **query})
    reply = (api or worker.api).get(path)
    assert reply.status == 200, reply
    return {e["execution_id"] for e in reply.body["executions"]}


def test_executions_are_searched_across_workflows_showing_only_what_the_caller_may_read(
    pair: list[WorkerProcess],
) -> None:
    first, second = pair
    assert first.api.deploy(SUPPORT).status == 201
    support_echo = ECHO.replace("id: pg-echo", "id: pg-echo-support\ndepartment: support")
    for text in (ECHO, support_echo):
        assert first.api.deploy(text).status == 201, text
    until(lambda: second.api.get("/workflows/pg-echo-support").status == 200, "the deployment")
    started = {
        (workflow_id, customer): first.api.start(workflow_id, {"n": 1, "customer": customer})
        for workflow_id in ("pg-echo", "pg-echo-support")
        for customer in ("ada", "bob")
    }
    finished = first.wait_until_finished(list(started.values()), 60)
    assert all(view["status"] == "completed" for view in finished.values()), finished
    adas = {started["pg-echo", "ada"], started["pg-echo-support", "ada"]}

    every = set(started.values())
    until(lambda: searched(second, status="completed") == every, "every end stored")
    assert searched(first, **{"input.customer": "ada"}) == adas
    assert searched(second, **{"input.customer": "ada"}) == adas
    assert searched(second, department="support", **{"input.customer": "bob"}) == {
        started["pg-echo-support", "bob"]
    }
    viewer = second.api.as_new_key("viewer", "support-viewer", "support")
    assert searched(second, viewer, **{"input.customer": "ada"}) == {
        started["pg-echo-support", "ada"]
    }
    assert searched(second, viewer, department="finance") == set()
    reply = second.api.get("/executions?input.a..b=x")
    assert reply.status == 400 and reply.body["field"] == "input.a..b", reply
