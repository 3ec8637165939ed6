"""Statuses live in one place: `ExecutionStatus` and `NodeStatus` in engine/state.py.

A source check: no module of braidflow spells a status as a raw string, so the words cannot
drift apart again (as the CLI's own terminal set once did).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import braidflow
from braidflow.connectors.api.openapi import EXECUTION_STATUSES
from braidflow.engine.state import TERMINAL, ExecutionStatus, NodeStatus

PACKAGE = Path(braidflow.__file__).parent
HOME = PACKAGE / "engine" / "state.py"
WORDS = {status.value for status in (*ExecutionStatus, *NodeStatus)}
SQL_QUOTED = re.compile("'(" + "|".join(sorted(WORDS)) + ")'")

# The same words with other meanings: the demo job service's own protocol, the default
# reason of a cancel (a message), and field names of a foreach node's progress.
NOT_STATUSES = {
    ("connectors/demo_services.py", "accepted"),
    ("connectors/demo_services.py", "running"),
    ("engine/step.py", "cancelled"),
    ("connectors/api/openapi.py", "running"),
    ("connectors/api/openapi.py", "failed"),
}


def _keys(tree: ast.AST) -> set[int]:
    """Ids of the constants used as keys (dict keys, subscripts, `.get` names), not values."""
    keys: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript):
            keys.add(id(node.slice))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            keys.add(id(node.args[0]))
    return keys


def raw_statuses(source: str, where: str) -> list[str]:
    """`where:line: literal` for each raw status string in `source`, a module's text."""
    tree = ast.parse(source, filename=where)
    keys = _keys(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        words = {node.value} & WORDS if id(node) not in keys else set()
        words |= set(SQL_QUOTED.findall(node.value))
        found += [f"{where}:{node.lineno}: {w!r}" for w in words if (where, w) not in NOT_STATUSES]
    return sorted(found)


def test_no_module_spells_a_status_outside_the_enums() -> None:
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != HOME
        for hit in raw_statuses(path.read_text(), path.relative_to(PACKAGE).as_posix())
    ]
    assert found == []


def test_the_check_sees_a_raw_status() -> None:
    source = 'DONE = run.status == "completed"\nSQL = "SET status = \'running\'"\nN = r["failed"]\n'
    assert raw_statuses(source, "engine/probe.py") == [
        "engine/probe.py:1: 'completed'",
        "engine/probe.py:2: 'running'",
    ]


def test_the_terminal_set_and_the_api_list_derive_from_the_enum() -> None:
    assert {"completed", "failed", "cancelled"} == TERMINAL
    assert EXECUTION_STATUSES == (
        "accepted",
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
        "parked",
    )
