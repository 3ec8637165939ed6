"""The functional core stays pure: topology and engine import no I/O and read no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import braidflow

PACKAGE = Path(braidflow.__file__).parent
FORBIDDEN = (
    "braidflow.streams",
    "braidflow.connectors",
    "braidflow.schemas",
    "faust",
    "confluent_kafka",
    "aiokafka",
    "aiohttp",
    "opentelemetry",
    "rocksdict",
    "asyncio",
    "socket",
    "time",
    "random",
    "uuid",
    "os",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path",
    sorted(
        [*PACKAGE.joinpath("topology").rglob("*.py"), *PACKAGE.joinpath("engine").rglob("*.py")]
    ),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_pure_modules_import_no_io(path: Path) -> None:
    bad = {
        name
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{path} imports {sorted(bad)}"
    source = path.read_text()
    for clock in ("datetime.now", "datetime.utcnow", "date.today"):
        assert clock not in source, f"{path} reads the clock via {clock}"
