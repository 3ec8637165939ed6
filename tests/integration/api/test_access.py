"""Who may do what, against a real worker: department-scoped keys see and change only their
department; a decision is by the caller; approvers; keys are stored hashed; a key made on
the command line works on every worker and, revoked, is refused on another worker. Every
operation x every credential is test_permission_matrix.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from dev_commands import Command, assert_one_line_failure, braidflow
from suite_broker import SuiteBroker
from topic_records import TopicReader
from waiting import until
from workers import SUITE_OWNER, WorkerApi, WorkerProcess

from braidflow.api_keys import parse_key
from braidflow.cli import main
from braidflow.connectors.broker import free_port

PUBLIC_WORKFLOW = """
id: access-open
nodes:
  - {id: ask, type: approval, params: {message: "ok?"}, timeout: 1d}
  - {id: done, type: end}
edges:
  - {from: ask, to: done}
"""
SUPPORT = """
id: access-support
department: support
nodes:
  - {id: ask, type: approval, params: {message: "ok?", approvers: [editor, ana]}, timeout: 1d}
  - {id: done, type: end}
edges:
  - {from: ask, to: done}
"""
FINANCE = """
id: access-finance
department: finance
nodes:
  - {id: ask, type: approval, params: {message: "ok?"}, timeout: 1d}
  - {id: done, type: end}
edges:
  - {from: ask, to: done}
"""
# A liveness bound, not a timing: a revocation reaches another worker well within it.
REVOKED_DEADLINE_S = 30.0


@dataclass
class Access:
    worker: WorkerProcess
    apis: dict[str, WorkerApi]
    execution_id: str


@pytest.fixture(scope="module")
def access(broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Access]:
    """A worker of its own, with a key of each role (one of them revoked)."""
    home = tmp_path_factory.mktemp("access-worker")
    worker = WorkerProcess(broker, f"t{uuid.uuid4().hex[:10]}", home / "data", home / "worker.log")
    try:
        worker.start().wait_ready()
        owner = worker.api
        apis = {"owner": owner, "no key": owner.with_key(None)}
        for role in ("editor", "operator", "viewer"):
            apis[role] = owner.as_new_key(role, f"an-{role}")
        revoked = owner.post_json("/keys", {"role": "owner", "name": "gone"}).body
        assert owner.request("DELETE", f"/keys/{revoked['id']}").status == 200
        apis["revoked key"] = owner.with_key(revoked["key"])
        for text in (PUBLIC_WORKFLOW, SUPPORT, FINANCE):
            assert owner.deploy(text).status == 201
        yield Access(worker, apis, owner.start("access-open", {}))
    finally:
        worker.stop()


def test_a_401_names_why_and_a_403_the_role_needed(access: Access) -> None:
    none = access.apis["no key"].get("/workflows")
    assert (none.status, none.body["field"]) == (401, "Authorization"), none
    token = access.apis["owner"].with_key("eyJhbGciOi.not-a-key.x").get("/workflows")
    assert token.status == 401 and "verifies no tokens" in token.body["error"], token
    viewer = access.apis["viewer"].deploy(PUBLIC_WORKFLOW)
    assert viewer.status == 403 and "editor" in viewer.body["error"], viewer


def test_a_department_key_sees_and_changes_only_its_department(access: Access) -> None:
    owner = access.apis["owner"]
    support = owner.as_new_key("operator", "sam", "support")
    listed = {w["id"] for w in support.get("/workflows").body["workflows"]}
    assert listed == {"access-support"}
    assert support.get("/workflows/access-finance").status == 404
    assert support.get("/workflows/access-open").status == 404
    finance_run = owner.start("access-finance", {})
    assert support.get(f"/executions/{finance_run}").status == 404
    assert support.post_json(f"/executions/{finance_run}/cancel", {}).status == 404
    started = support.post_json("/workflows/access-support/executions", {"input": {}})
    assert started.status == 202, started
    assert support.get(f"/executions/{started.body['execution_id']}").status == 200
    assert support.post_json("/workflows/access-finance/executions", {}).status == 404
    # Read-only in its department: seen, but not changed.
    watcher = owner.as_new_key("viewer", "wes", "support")
    assert watcher.get("/workflows/access-support").status == 200
    assert watcher.post_json("/workflows/access-support/executions", {}).status == 403
    # An editor of support deploys into support only.
    editor = owner.as_new_key("editor", "eve", "support")
    assert editor.deploy(SUPPORT.replace("ok?", "fine?")).status == 201
    assert editor.deploy(FINANCE.replace("ok?", "fine?")).status == 404
    assert editor.request("DELETE", "/workflows/access-finance").status == 404
    pending = {a["workflow_id"] for a in support.get("/approvals").body["approvals"]}
    assert pending <= {"access-support"}


def test_a_department_owner_makes_no_keys_and_reads_no_audit_log(access: Access) -> None:
    """Keys and the audit log are the tenant's, not a department's: a department's owner who
    could make a tenant-wide key would hold every department."""
    owner = access.apis["owner"]
    support_owner = owner.as_new_key("owner", "sue", "support")
    made = support_owner.post_json("/keys", {"role": "owner", "name": "escalated"})
    assert (made.status, made.body["error"]) == (
        403,
        "sue: managing keys is for the owner role of the whole tenant",
    ), made
    assert support_owner.get("/keys").status == 403
    # Who may is settled before what was asked: a bad body tells it nothing either.
    assert support_owner.post_json("/keys", {"role": "king"}).status == 403
    some_key = owner.get("/keys").body["keys"][0]["id"]
    assert support_owner.request("DELETE", f"/keys/{some_key}").status == 403
    assert support_owner.get("/audit").status == 403
    # Inside its department it is an owner still.
    assert support_owner.deploy(SUPPORT.replace("ok?", "owned?")).status == 201


def waiting_at_ask(api: WorkerApi, execution_id: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        view = api.execution(execution_id).body
        nodes = {n["node_id"]: n["status"] for n in view.get("nodes", [])}
        if nodes.get("ask") == "waiting":
            return
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_a_decision_is_by_the_caller_and_a_by_in_the_body_is_refused(access: Access) -> None:
    operator = access.apis["operator"]
    execution_id = access.apis["owner"].start("access-open", {})
    waiting_at_ask(operator, execution_id)
    path = f"/executions/{execution_id}/approvals/ask"
    named = operator.post_json(path, {"choice": "approve", "by": "mallory"})
    assert (named.status, named.body["field"]) == (400, "by"), named
    decided = operator.post_json(path, {"choice": "approve"})
    assert (decided.status, decided.body["by"]) == (200, "an-operator"), decided
    paused = operator.post_json(f"/executions/{access.execution_id}/pause", {"by": "x"})
    assert (paused.status, paused.body["field"]) == (400, "by"), paused


def test_only_the_approvers_decide(access: Access) -> None:
    owner = access.apis["owner"]
    olga = owner.as_new_key("operator", "olga", "support")
    ana = owner.as_new_key("operator", "ana", "support")
    execution_id = owner.start("access-support", {})
    waiting_at_ask(owner, execution_id)
    path = f"/executions/{execution_id}/approvals/ask"
    refused = olga.post_json(path, {"choice": "approve"})
    assert refused.status == 403 and "approvers" in refused.body["error"], refused
    decided = ana.post_json(path, {"choice": "reject"})
    assert (decided.status, decided.body["by"]) == (200, "ana"), decided
    # A role named among the approvers: an editor (or an owner) of the department decides.
    second = owner.start("access-support", {})
    waiting_at_ask(owner, second)
    by_owner = owner.post_json(f"/executions/{second}/approvals/ask", {"choice": "approve"})
    assert (by_owner.status, by_owner.body["by"]) == (200, SUITE_OWNER), by_owner


def raw_keys_topic(broker: SuiteBroker, topic: str) -> bytes:
    """Every key and value of the keys topic, as bytes: to the end of fetches made now
    (TopicReader: the embedded broker's ListOffsets can stop short of the last batch)."""
    with TopicReader(broker, topic) as reader:
        return b"".join((r.key or b"") + (r.value or b"") for r in reader.read_to_end())


def test_keys_are_stored_hashed(access: Access, broker: SuiteBroker) -> None:
    created = access.apis["owner"].post_json("/keys", {"role": "viewer", "name": "hashed"})
    assert created.status == 201, created
    key = created.body["key"]
    # The secret may itself hold "_": take it as the key format parses it.
    _, secret = parse_key(key) or ("", "")
    assert secret
    raw = raw_keys_topic(broker, f"{access.worker.prefix}.keys")
    assert created.body["id"].encode() in raw
    assert key.encode() not in raw and secret.encode() not in raw
    for api in access.apis.values():
        if api.key is not None:
            assert (parse_key(api.key) or ("", ""))[1].encode() not in raw
    listed = access.apis["owner"].get("/keys").body["keys"]
    assert all("hash" not in k and "salt" not in k and "key" not in k for k in listed)
    # Audited with its id and role, never the key.
    audit = f"/audit?target={created.body['id']}"
    records = until(lambda: access.apis["owner"].get(audit).body["records"], "the key's record")
    assert [(r["action"], r["detail"]["role"]) for r in records] == [("create_key", "viewer")]
    assert secret not in json.dumps(records)


def test_a_cli_key_works_on_every_worker_and_revoked_is_refused_on_another(
    access: Access, broker: SuiteBroker, tmp_path: Path
) -> None:
    prefix = access.worker.prefix
    kafka = [*broker.worker_options(), "--prefix", prefix]
    created = CliRunner().invoke(
        main, ["keys", "create", "--role", "operator", "--name", "cli-made", *kafka]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("bfk_"), created.stdout
    other = WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log")
    try:
        other.start().wait_ready()
        first, second = access.worker.api.with_key(key), other.api.with_key(key)
        assert first.get("/workflows").status == 200
        assert second.get("/workflows").status == 200
        key_id = key.split("_")[1]
        listed = CliRunner().invoke(main, ["keys", "list", *kafka])
        assert f"{key_id}  default  operator" in listed.stdout, listed.output
        revoked = CliRunner().invoke(main, ["keys", "revoke", key_id, *kafka])
        assert revoked.exit_code == 0, revoked.output
        deadline = time.monotonic() + REVOKED_DEADLINE_S
        while second.get("/workflows").status != 401:
            assert time.monotonic() < deadline, "the revocation never reached the other worker"
            time.sleep(0.05)
        assert first.get("/workflows").status == 401
        # Both, made on the command line, are audited.
        owner = access.apis["owner"]

        def audited() -> list[str] | None:
            found = owner.get(f"/audit?target={key_id}").body["records"]
            return [r["action"] for r in found] if len(found) == 2 else None

        assert until(audited, "the audit records of the key") == ["revoke_key", "create_key"]
    finally:
        other.stop()


def test_a_key_made_on_the_command_line_works_at_once_on_a_worker_whose_follower_lags(
    broker: SuiteBroker, tmp_path: Path
) -> None:
    # The keys follower fetches every 5 s here: the first request with the new key comes
    # long before it would read it, so the worker reads the keys topic to its end itself.
    worker = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        tmp_path / "data",
        tmp_path / "worker.log",
        env={"BRAIDFLOW_BACKGROUND_FETCH_WAIT_MS": "5000"},
    )
    with worker:
        worker.wait_ready()
        kafka = [*broker.worker_options(), "--prefix", worker.prefix]
        for n in range(3):
            created = CliRunner().invoke(
                main, ["keys", "create", "--role", "viewer", "--name", f"at-once-{n}", *kafka]
            )
            assert created.exit_code == 0, created.output
            key = created.stdout.strip().splitlines()[-1]
            assert worker.api.with_key(key).get("/workflows").status == 200, n
        unknown = key.replace(key.split("_")[1], "0" * len(key.split("_")[1]))
        assert worker.api.with_key(unknown).get("/workflows").status == 401


def test_authentication_off_is_refused_with_one_line_unless_on_127_0_0_1(
    broker: SuiteBroker, tmp_path: Path
) -> None:
    command = Command(
        braidflow(
            "worker",
            *broker.worker_options(),
            "--no-auth",
            "--api-host",
            "0.0.0.0",
            "--api-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
        ),
        tmp_path,
    )
    try:
        assert_one_line_failure(command, "--no-auth", "127.0.0.1", "0.0.0.0")
    finally:
        command.stop()


def test_with_authentication_off_the_worker_says_so_and_asks_for_no_key(
    broker: SuiteBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        tmp_path / "data",
        tmp_path / "worker.log",
        authentication=False,
    )
    try:
        worker.start().wait_ready()
        reply = worker.api.get("/workflows")
        assert reply.status == 200 and worker.api.key is None, reply
        said = [line for line in worker.log().splitlines() if "authentication is OFF" in line]
        assert len(said) == 1, worker.log_tail()
    finally:
        worker.stop()


def test_a_key_name_shaped_like_a_token_subject_is_a_400_naming_the_field(access: Access) -> None:
    refused = access.apis["owner"].post_json("/keys", {"role": "viewer", "name": "ana@acme.io"})
    assert (refused.status, refused.body.get("field")) == (400, "name"), refused
    assert "'ana@acme.io'" in refused.body["error"]
