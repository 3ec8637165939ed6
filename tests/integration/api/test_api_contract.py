"""The API keeps its contract: schemathesis sends what the OpenAPI document allows (and what
it does not) to a live worker; no answer is a 500 or breaks the document, and what the
document calls invalid is refused.

Besides ids it makes up, each operation gets cases naming a workflow, an execution waiting
at an approval, a webhook and a dead letter that exist, so the answers about real things
are checked too.
Bounded so the suite stays fast: a few examples per operation, a timeout per call,
generation only (no shrinking), and a fixed seed, so a run is repeatable.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.api import RESOURCES, BadRequest
from braidflow.connectors.api.openapi import document
from braidflow.connectors.api.waiting import wait_query

EXAMPLES_PER_OPERATION = 25
SHORT_WAIT = "100ms"
CALL_TIMEOUT_S = 10.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
REVIEW = """
id: contract-review
name: Contract review
triggers:
  - event: {types: ["contract.signed"]}
  - webhook: {name: contract-hook}
nodes:
  - id: review
    type: approval
    params: {message: "Approve the contract?"}
    timeout: 1d
  - {id: done, type: end}
edges:
  - {from: review, to: done}
"""
CHARGE = """
id: contract-charge
nodes:
  - {id: charge, type: task, params: {handler: test.boom, input: {card: 4242}}}
  - {id: done, type: end}
edges:
  - {from: charge, to: done}
"""
# A liveness bound, not a timing: the dead letter is indexed well within it.
DEAD_LETTER_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Known:
    """A live worker with a workflow deployed and an execution waiting at its approval."""

    worker: WorkerProcess
    workflow_id: str
    execution_id: str
    node_id: str
    webhook: str
    dead_letter_id: str

    def path_parameters(self, path: str) -> dict[str, str] | None:
        """Path parameters of `path` naming what exists; None where nothing known fits."""
        names = set(re.findall(r"\{(\w+)\}", path))
        # The stream of a real workflow, or of an execution waiting at its approval, stays
        # open past any call's timeout: tests/integration/live/ reads those.
        if not names or path.endswith("/events"):
            return None
        known = {
            "node": self.node_id,
            "name": self.webhook,
            "id": self.workflow_id,
            "n": "1",
            # A tenant without workflows: its webhooks answer 404.
            "tenant": "contract-tenant",
        }
        if "/executions/{id}" in path:
            known["id"] = self.execution_id
        elif path.startswith("/api/v1/dead-letters/"):
            known["id"] = self.dead_letter_id
        return {name: known[name] for name in names}


@pytest.fixture(scope="module")
def known(broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    """A worker of its own, so what schemathesis deploys, removes and publishes stays with it."""
    home = tmp_path_factory.mktemp("contract-worker")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    worker = WorkerProcess(
        broker,
        prefix,
        home / "data",
        home / "worker.log",
        env={"BRAIDFLOW_EVENTS_PREFIX": f"{prefix}-events."},
    )
    try:
        worker.start().wait_ready()
        assert worker.api.deploy(REVIEW).status == 201
        execution_id = worker.api.start("contract-review", {})
        yield Known(
            worker, "contract-review", execution_id, "review", "contract-hook", dead_letter(worker)
        )
    finally:
        worker.stop()


def dead_letter(worker: WorkerProcess) -> str:
    """The id of the dead letter a failing node leaves."""
    assert worker.api.deploy(CHARGE).status == 201
    execution_id = worker.api.start("contract-charge", {})
    deadline = time.monotonic() + DEAD_LETTER_DEADLINE_S
    while True:
        found = worker.api.get("/dead-letters?workflow=contract-charge").body["dead_letters"]
        ids = [d["id"] for d in found if d["execution_id"] == execution_id]
        if ids:
            return str(ids[0])
        if time.monotonic() > deadline:
            worker.fail(f"no dead letter for {execution_id} after {DEAD_LETTER_DEADLINE_S}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def contract(known: Known) -> schemathesis.BaseSchema:
    """The document the worker serves, as schemathesis reads it."""
    schema = schemathesis.openapi.from_url(
        f"{known.worker.api.base_url}/api/v1/openapi.json", headers=credential(known)
    )
    # Every call sends the owner key: a call without one, or with a bad one, is the
    # permission matrix's to check (test_access.py), not a mutation to generate here.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def credential(known: Known) -> dict[str, str]:
    """The worker's owner key, as every call sends it: the contract holds with a key."""
    return {"Authorization": f"Bearer {known.worker.api.key}"}


def documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, from the document create_api serves."""
    paths = document(RESOURCES)["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() for method in item)


@pytest.mark.parametrize(
    ("method", "path"),
    documented_operations(),
    ids=[f"{m} {p}" for m, p in documented_operations()],
)
def test_no_answer_is_a_500_or_breaks_the_document(
    contract: schemathesis.BaseSchema, known: Known, method: str, path: str
) -> None:
    operation = contract[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    existing = known.path_parameters(path)
    # Removing the workflow would leave the operations after it nothing real to ask about.
    if existing is not None and method != "DELETE":
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=existing))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answers_by_the_document(case: schemathesis.Case) -> None:
        bound_the_wait(case)
        case.call_and_validate(checks=CHECKS, timeout=CALL_TIMEOUT_S, headers=credential(known))

    answers_by_the_document()


def bound_the_wait(case: schemathesis.Case) -> None:
    """A valid `wait` becomes a short one: the known execution waits at its approval, and a
    long wait would outlast the call's timeout. An invalid one is left to be refused."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, str):
        with contextlib.suppress(BadRequest):
            if wait_query({"wait": wait}):
                case.query["wait"] = SHORT_WAIT


def test_a_version_written_as_a_whole_float_is_that_version(known: Known) -> None:
    """JSON Schema, and so the document, counts 1.0 as an integer."""
    reply = known.worker.api.post_json(
        f"/workflows/{known.workflow_id}/executions", {"input": {}, "version": 1.0}
    )
    assert (reply.status, reply.body["version"]) == (202, 1), reply


def test_an_empty_request_id_header_names_no_event_id(known: Known) -> None:
    reply = known.worker.api.request(
        "POST", f"/hooks/{known.webhook}", b"{}", "application/json", {"X-Request-Id": ""}
    )
    assert reply.status == 202, reply
    assert reply.body["event_id"] and len(reply.body["executions"]) == 1, reply
