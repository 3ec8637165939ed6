"""The read models' unit tests, run again with each index in PostgreSQL instead of SQLite.

Every test of those modules that takes the `index` fixture is taken here as it is; the
`index` fixture below gives it an index in a schema of its own in the module's database.
"""

from __future__ import annotations

import importlib.util
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from braidflow.connectors.audit_index import AuditIndex
from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.connectors.node_log_index import NodeLogIndex
from braidflow.connectors.read_model_db import read_model_location

UNIT = Path(__file__).parents[2] / "unit" / "connectors"
MODELS: dict[str, Callable[[Any], Any]] = {
    "test_execution_index": ExecutionIndex,
    "test_accepted_executions": ExecutionIndex,
    "test_queued_executions": ExecutionIndex,
    "test_execution_index_search": ExecutionIndex,
    "test_dead_letter_index": DeadLetterIndex,
    "test_audit_index": AuditIndex,
    "test_node_log_index": NodeLogIndex,
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"unit_{name}", UNIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _index_tests(name: str) -> dict[str, Any]:
    """The tests of unit module `name` that take `index`, named `test_<module>__<test>`."""
    module = _load(name)
    found = {}
    for test_name, test in vars(module).items():
        if test_name.startswith("test_") and "index" in inspect.signature(test).parameters:
            found[f"test_{name[5:]}__{test_name[5:]}"] = test
    return found


for _name in MODELS:
    globals().update(_index_tests(_name))


@pytest.fixture
def index(request: pytest.FixtureRequest, read_model_url: str, tmp_path: Path) -> Iterator[Any]:
    model = MODELS[request.function.__module__.removeprefix("unit_")]
    found = model(read_model_location(read_model_url, tmp_path, f"t{uuid.uuid4().hex[:10]}", "m"))
    yield found
    found.close()
