"""The API keeps its contract: schemathesis sends what the OpenAPI document allows (and what
it does not) to a live worker, and no answer is a 500 or breaks the document.

Bounded so the suite stays fast: a few examples per operation, a timeout per call,
generation only (no shrinking), and a fixed seed, so a run is repeatable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from workers import WorkerProcess

from braidflow.connectors.api import RESOURCES
from braidflow.connectors.api.openapi import document

EXAMPLES_PER_OPERATION = 12
CALL_TIMEOUT_S = 10.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def contract_worker(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker of its own: what schemathesis deploys, removes and publishes stays with it."""
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
        yield worker.start().wait_ready()
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def contract(contract_worker: WorkerProcess) -> schemathesis.BaseSchema:
    """The document the worker serves, as schemathesis reads it."""
    return schemathesis.openapi.from_url(f"{contract_worker.api.base_url}/api/v1/openapi.json")


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
    contract: schemathesis.BaseSchema, method: str, path: str
) -> None:
    operation = contract[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answers_by_the_document(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=CALL_TIMEOUT_S)

    answers_by_the_document()
