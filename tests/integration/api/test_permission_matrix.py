"""The permission matrix, against one real worker: every operation of the API document x
every credential answers with the exact status a small rule table derives.

Credentials: each role (owner, editor, operator, viewer) x each scope, relative to the
objects the requests are about (all of department `support` in tenant `default`):

- tenant: the role in the whole of their tenant;
- own_department: the role only in `support`;
- other_department: the role only in `finance`, of the same tenant;
- other_tenant: the role in the whole of tenant `other`;

and a request without a key, and one with a revoked key.

Every request is one a caller who may make it gets a known answer from without changing
anything that matters: a finished execution answers 409 to a cancel, a start with an input
its schema refuses 422, a deploy of the text already deployed 200. The exceptions get a
fresh object per case (a workflow to remove, a key to revoke). A listing answers 200 to
every role and shows the probe objects exactly when the credential may read them: never
another tenant's, never an unreadable department's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from click.testing import CliRunner
from live_streams import stream_status
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerApi, WorkerProcess

from braidflow.access import DEFAULT_TENANT, Role
from braidflow.cli import main
from braidflow.client_cli import quote_id
from braidflow.connectors.api import RESOURCES
from braidflow.connectors.api.openapi import document

OTHER_TENANT = "other"
DEPARTMENT = "support"
OTHER_DEPARTMENT = "finance"

SUPPORT_DEPARTMENT = f"kind: Department\nname: {DEPARTMENT}\ndescription: the matrix's\n"
# The object of most operations: its input schema refuses a start without `ticket` (422).
TARGET = f"""
id: matrix-target
department: {DEPARTMENT}
input:
  type: object
  required: [ticket]
  properties: {{ticket: {{type: string}}}}
nodes:
  - {{id: ask, type: approval, params: {{message: "ok?"}}, timeout: 1d}}
  - {{id: done, type: end}}
edges:
  - {{from: ask, to: done}}
"""
# Fails into a dead letter, which is redriven to completion: a redrive of it then answers 409.
FRAGILE = f"""
id: matrix-fragile
department: {DEPARTMENT}
nodes:
  - {{id: check, type: task, params: {{handler: test.strict}}}}
  - {{id: done, type: end}}
edges:
  - {{from: check, to: done}}
"""
# What the deploy cases send: deployed already in both tenants, so a deploy answers 200.
DEPLOYED = f"""
id: matrix-deployed
department: {DEPARTMENT}
nodes:
  - {{id: done, type: end}}
edges: []
"""
REMOVABLE = """
id: {id}
department: {department}
nodes:
  - {{id: done, type: end}}
edges: []
"""
EVENT = {
    "specversion": "1.0",
    "id": "matrix-event",
    "source": "/matrix",
    "type": "matrix.noop",
    "department": DEPARTMENT,
}


class Scope(StrEnum):
    """Where a credential holds its role, relative to the objects of the requests."""

    TENANT = "tenant"
    OWN_DEPARTMENT = "own_department"
    OTHER_DEPARTMENT = "other_department"
    OTHER_TENANT = "other_tenant"


@dataclass(frozen=True)
class Credential:
    """A role in a scope; role None: no key at all, or (revoked) a revoked key."""

    role: Role | None
    scope: Scope | None = None
    revoked: bool = False

    @property
    def id(self) -> str:
        if self.role is None:
            return "revoked_key" if self.revoked else "no_key"
        return f"{self.role.value}-{self.scope}"

    @property
    def tenant(self) -> str:
        return OTHER_TENANT if self.scope is Scope.OTHER_TENANT else DEFAULT_TENANT


# The department a key of each scope is limited to (none: the whole of its tenant).
DEPARTMENTS = {Scope.OWN_DEPARTMENT: DEPARTMENT, Scope.OTHER_DEPARTMENT: OTHER_DEPARTMENT}
ROLES = (Role.OWNER, Role.EDITOR, Role.OPERATOR, Role.VIEWER)
CREDENTIALS = [
    *(Credential(role, scope) for role in ROLES for scope in Scope),
    Credential(None),
    Credential(None, revoked=True),
]


class Reach(StrEnum):
    """What a request is about, which decides how scope changes its answer."""

    PUBLIC = "public"  # no credential needed: the same answer for anyone
    OBJECT = "object"  # an object of department support in tenant default
    LISTING = "listing"  # the caller's own tenant, showing only what the caller may read
    TENANT = "tenant"  # the caller's own tenant as a whole: keys, the audit log
    TENANT_KEY = "tenant key"  # a key of tenant default: the whole tenant's, no department's
    DEPLOY = "deploy"  # a text of a support workflow, deployed into the caller's tenant
    PUBLISH = "publish"  # an event for department support, into the caller's tenant
    DOCUMENT = "document"  # the API document: the same for every tenant and department


ANSWER = "answer"  # the operation's own answer, as a caller who may make it gets it

# The rule table, once the credential is valid and its role covers the operation's (else
# 401, 403). Another tenant's object, an unreadable department's: 404, as if absent. Keys
# and the audit log are no department's: a department's owner may not. A deploy over a
# workflow of a department it cannot read: not found; into its own tenant: done. An event
# has no object to hide: one for a department it does not operate is refused.
# fmt: off
RULES: dict[Reach, tuple[int | str, ...]] = {
    #                   tenant  own_department  other_department  other_tenant
    Reach.OBJECT:      (ANSWER, ANSWER,         404,              404),
    Reach.LISTING:     (ANSWER, ANSWER,         ANSWER,           ANSWER),
    Reach.TENANT:      (ANSWER, 403,            403,              ANSWER),
    Reach.TENANT_KEY:  (ANSWER, 403,            403,              404),
    Reach.DEPLOY:      (ANSWER, ANSWER,         404,              ANSWER),
    Reach.PUBLISH:     (ANSWER, ANSWER,         403,              ANSWER),
    Reach.DOCUMENT:    (ANSWER, ANSWER,         ANSWER,           ANSWER),
}
# Which scopes a listing shows the probe objects to.
SHOWN =                (True,   True,           False,            False)
# fmt: on
COLUMNS = tuple(Scope)


@dataclass(frozen=True)
class Case:
    """A request of one operation and the answer of a caller who may make it.

    `path` names fixture objects in braces ({waiting}, {finished}, {letter}) or fresh ones
    made for the one request ({removable}, {key}). `probe`: for a listing, which of the
    fixture's objects it must show exactly to the scopes of SHOWN."""

    path: str
    body: bytes | None
    answer: int
    reach: Reach
    probe: str | None = None
    content_type: str = "application/json"
    live: bool = False
    """A live stream, which never ends by itself: its status is read off its head."""


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


TARGET_PATH = "/workflows/matrix-target"
CASES: dict[str, Case] = {
    "deploy": Case("/workflows", DEPLOYED.encode(), 200, Reach.DEPLOY, None, "application/yaml"),
    "list_workflows": Case("/workflows", None, 200, Reach.LISTING, "workflows"),
    "show_workflow": Case(TARGET_PATH, None, 200, Reach.OBJECT),
    "remove_workflow": Case("/workflows/{removable}", None, 200, Reach.OBJECT),
    "start": Case(f"{TARGET_PATH}/executions", _json({"input": {}}), 422, Reach.OBJECT),
    "executions_of": Case(f"{TARGET_PATH}/executions", None, 200, Reach.OBJECT),
    "search_executions": Case("/executions", None, 200, Reach.LISTING, "executions"),
    "show_execution": Case("/executions/{waiting}", None, 200, Reach.OBJECT),
    "execution_logs": Case("/executions/{finished}/logs", None, 200, Reach.OBJECT),
    # A finished execution's stream ends by itself, after its end.
    "execution_events": Case("/executions/{finished}/events", None, 200, Reach.OBJECT),
    "workflow_events": Case(f"{TARGET_PATH}/events", None, 200, Reach.OBJECT, live=True),
    "department_events": Case(
        f"/departments/{DEPARTMENT}/events", None, 200, Reach.OBJECT, live=True
    ),
    "cancel": Case("/executions/{finished}/cancel", b"{}", 409, Reach.OBJECT),
    "pause": Case("/executions/{finished}/pause", b"{}", 409, Reach.OBJECT),
    "resume": Case("/executions/{finished}/resume", b"{}", 409, Reach.OBJECT),
    "pending_approvals": Case("/approvals", None, 200, Reach.LISTING, "approvals"),
    "decide": Case(
        "/executions/{finished}/approvals/ask", _json({"choice": "approve"}), 409, Reach.OBJECT
    ),
    "publish": Case("/events", _json(EVENT), 202, Reach.PUBLISH),
    "webhook": Case("/hooks/matrix-no-such-hook", b"{}", 404, Reach.PUBLIC),
    "tenant_webhook": Case(
        f"/tenants/{OTHER_TENANT}/hooks/matrix-no-such-hook", b"{}", 404, Reach.PUBLIC
    ),
    "backfill": Case(
        f"{TARGET_PATH}/backfill", _json({"from": "2026-01-01T00:00:00Z"}), 422, Reach.OBJECT
    ),
    "list_dead_letters": Case("/dead-letters", None, 200, Reach.LISTING, "dead_letters"),
    "read_stats": Case("/stats?workflow=matrix-target", None, 200, Reach.OBJECT),
    "redrive": Case("/dead-letters/{letter}/redrive", b"{}", 409, Reach.OBJECT),
    "list_versions": Case(f"{TARGET_PATH}/versions", None, 200, Reach.OBJECT),
    "show_version": Case(f"{TARGET_PATH}/versions/1", None, 200, Reach.OBJECT),
    "rollback": Case(f"{TARGET_PATH}/rollback", _json({"version": 1}), 200, Reach.OBJECT),
    "diff": Case(f"{TARGET_PATH}/diff?from=1&to=1", None, 200, Reach.OBJECT),
    "list_departments": Case("/departments", None, 200, Reach.LISTING, "departments"),
    "show_department": Case(f"/departments/{DEPARTMENT}", None, 200, Reach.OBJECT),
    # Only the records about the target: the newest 100 of the whole log would soon be the
    # matrix's own.
    "list_audit": Case("/audit?target=matrix-target", None, 200, Reach.TENANT, "records"),
    "create_key": Case("/keys", _json({"role": "viewer", "name": "made"}), 201, Reach.TENANT),
    "list_keys": Case("/keys", None, 200, Reach.TENANT, "keys"),
    "revoke_key": Case("/keys/{key}", None, 200, Reach.TENANT_KEY),
    "health": Case("/health", None, 200, Reach.PUBLIC),
    "ready": Case("/ready", None, 200, Reach.PUBLIC),
    "metrics": Case("/metrics", None, 200, Reach.PUBLIC),
    "openapi": Case("/openapi.json", None, 200, Reach.DOCUMENT),
    "me": Case("/me", None, 200, Reach.DOCUMENT),
    "workflow_graph": Case(f"{TARGET_PATH}/graph", None, 200, Reach.OBJECT),
    "department_map": Case("/map", None, 200, Reach.LISTING, "nodes"),
    "recent_events": Case("/event-bus", None, 200, Reach.LISTING),
    # The matrix's worker has no connections file: a draft a caller may ask for is a 400
    # naming `connection`, and asks no model.
    "create_draft": Case("/drafts", _json({"sentence": "greet", "model": "m"}), 400, Reach.LISTING),
}
# How a listing names what it shows.
LISTED: dict[str, Callable[[dict[str, Any]], str]] = {
    "workflows": lambda item: str(item["id"]),
    "approvals": lambda item: str(item["execution_id"]),
    "executions": lambda item: str(item["execution_id"]),
    "dead_letters": lambda item: str(item["id"]),
    "departments": lambda item: str(item["name"]),
    "records": lambda item: str(item["id"]),
    "keys": lambda item: str(item["id"]),
    "nodes": lambda item: str(item["id"]),
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    role: Role | None


def operations() -> list[Operation]:
    """Every operation of the document the API serves, with the least role it declares."""
    found = []
    for item in document(RESOURCES)["paths"].values():
        for method, spec in item.items():
            role = spec.get("x-braidflow-role")
            found.append(
                Operation(spec["operationId"], method.upper(), None if role is None else Role(role))
            )
    return sorted(found, key=lambda o: o.operation_id)


def expected(op: Operation, credential: Credential) -> int:
    """The exact status of `op` for `credential`, from the rule table."""
    case = CASES[op.operation_id]
    if case.reach is Reach.PUBLIC:
        return case.answer
    if credential.role is None:
        return 401
    # Decided before anything is looked up, so it tells nothing about what exists.
    assert op.role is not None
    if not credential.role.covers(op.role):
        return 403
    assert credential.scope is not None
    rule = RULES[case.reach][COLUMNS.index(credential.scope)]
    return case.answer if rule == ANSWER else int(rule)


MATRIX = [(op, credential) for op in operations() for credential in CREDENTIALS]


@dataclass
class Matrix:
    """The worker, a client per credential, the objects the requests are about."""

    worker: WorkerProcess
    apis: dict[str, WorkerApi]
    # Fixture objects the paths name, and the objects each listing must show or hide.
    objects: dict[str, str]
    probes: dict[str, set[str]]
    seeded_other_tenant: int

    def fresh(self, operation_id: str) -> dict[str, str]:
        """A new object for a request that changes it: a workflow to remove, a key to revoke."""
        if operation_id == "remove_workflow":
            workflow_id = f"matrix-removable-{uuid.uuid4().hex[:8]}"
            text = REMOVABLE.format(id=workflow_id, department=DEPARTMENT)
            deployed = self.worker.api.deploy(text)
            assert deployed.status == 201, deployed
            return {"removable": workflow_id}
        if operation_id == "revoke_key":
            made = self.worker.api.post_json("/keys", {"role": "viewer", "name": "revocable"})
            assert made.status == 201, made
            return {"key": str(made.body["id"])}
        return {}


def other_tenant_owner(broker: SuiteBroker, worker: WorkerProcess) -> WorkerApi:
    """An owner key of tenant `other`, made on the command line as an operator would."""
    kafka = [*broker.worker_options(), "--prefix", worker.prefix]
    create = ["keys", "create", "--tenant", OTHER_TENANT, "--role", "owner", "--name", "owner"]
    made = CliRunner().invoke(main, [*create, *kafka])
    assert made.exit_code == 0, made.output
    api = worker.api.with_key(made.stdout.strip().splitlines()[-1])
    # Made straight on Kafka: the worker knows it once it has read the keys topic that far.
    until(lambda: api.get("/keys").status == 200, "the worker to know the other tenant's key")
    return api


def waiting_at_ask(api: WorkerApi, execution_id: str) -> bool:
    view = api.execution(execution_id).body
    return {n["node_id"]: n["status"] for n in view.get("nodes", [])}.get("ask") == "waiting"


def pending(api: WorkerApi, execution_id: str) -> bool:
    listed = api.get("/approvals?workflow=matrix-target").body["approvals"]
    return any(a["execution_id"] == execution_id for a in listed)


def node_letter(api: WorkerApi, execution_id: str) -> str | None:
    found = api.get("/dead-letters?workflow=matrix-fragile&kind=node").body["dead_letters"]
    return next((d["id"] for d in found if d["execution_id"] == execution_id), None)


@pytest.fixture(scope="module")
def matrix(broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """One worker for the whole matrix, a key per credential, and the objects."""
    home = tmp_path_factory.mktemp("matrix-worker")
    worker = WorkerProcess(broker, f"t{uuid.uuid4().hex[:10]}", home / "data", home / "worker.log")
    try:
        worker.start().wait_ready()
        owner = worker.api
        for text in (SUPPORT_DEPARTMENT, TARGET, FRAGILE, DEPLOYED):
            deployed = owner.deploy(text)
            assert deployed.status == 201, deployed
        waiting = owner.start("matrix-target", {"ticket": "waits"})
        finished = owner.start("matrix-target", {"ticket": "finishes"})
        fragile = owner.start("matrix-fragile", {})

        other = other_tenant_owner(broker, worker)
        apis: dict[str, WorkerApi] = {"no_key": owner.with_key(None)}
        for credential in CREDENTIALS:
            role, scope = credential.role, credential.scope
            if role is None:
                continue
            maker = other if scope is Scope.OTHER_TENANT else owner
            department = DEPARTMENTS.get(scope)
            apis[credential.id] = maker.as_new_key(role, credential.id, department)
        revoked = owner.post_json("/keys", {"role": "owner", "name": "revoked"}).body
        assert owner.request("DELETE", f"/keys/{revoked['id']}").status == 200
        apis["revoked_key"] = owner.with_key(revoked["key"])
        # Tenant `other` has the deploy cases' text too. Until tenants land on main, another
        # tenant's key deploys nothing (404): those cases fail, as they should.
        seeded = other.deploy(DEPLOYED).status

        until(lambda: waiting_at_ask(owner, finished), "the execution to wait at ask")
        decided = owner.post_json(f"/executions/{finished}/approvals/ask", {"choice": "approve"})
        assert decided.status == 200, decided
        letter = until(lambda: node_letter(owner, fragile), "the dead letter of matrix-fragile")
        redriven = owner.post_json(
            f"/dead-letters/{quote_id(letter)}/redrive", {"input": {"fixed": True}}
        )
        assert redriven.status == 202, redriven
        views = worker.wait_until_finished([finished, fragile])
        assert [views[e]["status"] for e in (finished, fragile)] == ["completed"] * 2, views
        until(lambda: pending(owner, waiting), "the approval to be listed")
        audited = until(
            lambda: owner.get("/audit?target=matrix-target").body["records"], "audit records"
        )
        keys = [k["id"] for k in owner.get("/keys").body["keys"]]
        yield Matrix(
            worker,
            apis,
            {"waiting": waiting, "finished": finished, "letter": quote_id(letter)},
            {
                "workflows": {"matrix-target", "matrix-fragile"},
                "approvals": {waiting},
                "executions": {waiting, finished},
                "dead_letters": {letter},
                "departments": {DEPARTMENT},
                "records": {r["id"] for r in audited},
                "keys": set(keys),
                "nodes": {"matrix-target", "matrix-fragile"},
            },
            seeded,
        )
    finally:
        worker.stop()


def test_every_operation_is_in_the_matrix() -> None:
    """A new operation fails here until it has a case: none goes unchecked."""
    assert sorted(CASES) == sorted(o.operation_id for o in operations())
    public = {o.operation_id for o in operations() if o.role is None}
    assert public == {name for name, case in CASES.items() if case.reach is Reach.PUBLIC}


def test_the_matrix_has_774_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """43 operations x (4 roles x 4 scopes + no key + a revoked key)."""
    with capsys.disabled():
        print(
            f"\npermission matrix: {len(operations())} operations x {len(CREDENTIALS)}"
            f" credentials ({len(ROLES)} roles x {len(Scope)} scopes + no key + revoked key)"
            f" = {len(MATRIX)} cases"
        )
    assert len(MATRIX) == len(CASES) * len(CREDENTIALS) == 774


@pytest.mark.parametrize(
    ("op", "credential"),
    MATRIX,
    ids=[f"{op.operation_id}-{credential.id}" for op, credential in MATRIX],
)
def test_the_permission_matrix(matrix: Matrix, op: Operation, credential: Credential) -> None:
    case = CASES[op.operation_id]
    path = case.path.format(**matrix.objects, **matrix.fresh(op.operation_id))
    content_type = None if case.body is None else case.content_type
    want = expected(op, credential)
    if case.live:
        status = stream_status(matrix.apis[credential.id], path)
        assert status == want, (op, credential, status)
        return
    reply = matrix.apis[credential.id].request(op.method, path, case.body, content_type)
    assert reply.status == want, (op, credential, reply, matrix.seeded_other_tenant)
    if case.probe is None or reply.status != 200:
        return
    assert credential.scope is not None
    items = reply.body[case.probe]
    listed = {LISTED[case.probe](item) for item in items}
    probes = matrix.probes[case.probe]
    shown = probes if SHOWN[COLUMNS.index(credential.scope)] else set()
    assert listed & probes == shown, (op, credential, listed, probes)
    # What carries its tenant shows the caller's only.
    tenants = {item["tenant"] for item in items if "tenant" in item}
    assert tenants <= {credential.tenant}, (op, credential, items)
