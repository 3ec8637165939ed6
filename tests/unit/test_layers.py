"""The packages stay in layers: a module imports only from its own layer or the ones below,
and the streams, the connectors and the event publisher (peers) never import each other.

Low to high:

- foundation: the package root, `access`, `compiled`, `api_keys`, `config`, `event_loop`,
  `kafka_connection`, `kafka_reach`, `batch_take`, `fetch_stall`, `partition_ends`, `secrets`,
  `tasks`, `custom_kinds`, `node_logs`, `metrics`, `loop_metrics`, `tenants` (principals and
  roles, which modules run compiled, API keys, settings, the worker's event loop, the Kafka
  connection, what its librdkafka readers share and the partition ends they read, secrets
  providers, the task registry and the class of custom node kinds, metric definitions and the
  counters they are made of, tenants' names);
- `topology` (pure), then `engine` (pure, see test_purity.py);
- `schemas`: record formats and codecs (Avro, dead letters, lifecycle headers, limits);
- the edge, three peers that move records: `streams` (the Faust app and its agents),
  `connectors` (API, HTTP client, read models, embedded broker) and `client.py` (the
  EventPublisher a user's service imports, which must not pull in a worker);
- `runtime`: the composition root, the one place that wires streams and connectors; and
  `kind_plugins`, which hands the kinds of other packages to the engine at start;
- entry points: `cli.py`, `client_cli.py`, `client_workflows.py`, `client_audit.py`, `dev.py`,
  `dev_banner.py`, `dev_key.py`, `key_commands.py`.

Every import counts, those inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import braidflow

PACKAGE = Path(braidflow.__file__).parent

LAYERS: list[tuple[str, frozenset[str]]] = [
    (
        "foundation",
        frozenset(
            {
                "",
                "access",
                "compiled",
                "config",
                "event_loop",
                "kafka_connection",
                "kafka_reach",
                "batch_take",
                "fetch_stall",
                "partition_ends",
                "secrets",
                "api_keys",
                "tasks",
                "node_logs",
                "metrics",
                "loop_metrics",
                "tenants",
                "custom_kinds",
            }
        ),
    ),
    ("topology", frozenset({"topology"})),
    ("engine", frozenset({"engine"})),
    ("schemas", frozenset({"schemas"})),
    ("edge", frozenset({"streams", "connectors", "client"})),
    ("runtime", frozenset({"runtime", "kind_plugins"})),
    (
        "entry",
        frozenset(
            {
                "cli",
                "client_cli",
                "client_workflows",
                "client_audit",
                "client_stream",
                "dev",
                "dev_banner",
                "dev_key",
                "key_commands",
            }
        ),
    ),
]
# Units of one layer that may not import each other.
PEERS = frozenset({"edge"})
RANK = {unit: (rank, name) for rank, (name, units) in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The top-level module or package of `braidflow` that `module` belongs to ("" for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def braidflow_imports(module: str, is_package: bool, source: str) -> set[str]:
    """Every braidflow module the source of `module` imports, at any depth (functions too)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from braidflow import streams` imports the package streams.
            found.update(
                f"{base}.{alias.name}" if base == "braidflow" else base for alias in node.names
            )
    return {name for name in found if name == "braidflow" or name.startswith("braidflow.")}


def forbidden_imports(module: str, imports: set[str]) -> list[str]:
    """The imports of `module` that break the layers, each naming both modules and why."""
    unit = unit_of(module)
    rank, layer = RANK[unit]
    problems = []
    for imported in sorted(imports):
        other = unit_of(imported)
        if other not in RANK:
            # `from braidflow import task`: a name of the package root.
            other = ""
        other_rank, other_layer = RANK[other]
        if other_rank > rank:
            problems.append(f"{module} ({layer}) imports {imported} ({other_layer}, above it)")
        elif other_rank == rank and layer in PEERS and other != unit:
            problems.append(f"{module} imports {imported}: {unit} and {other} are peers")
    return problems


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({unit_of(module_name(p)) for p in MODULES} - set(RANK))
    assert not unplaced, f"place these in a layer of tests/unit/test_layers.py: {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_layer_and_below(path: Path) -> None:
    module = module_name(path)
    imports = braidflow_imports(module, path.name == "__init__.py", path.read_text())
    problems = forbidden_imports(module, imports)
    assert not problems, "\n".join(problems)


def test_an_import_inside_a_function_counts() -> None:
    source = "def f() -> None:\n    from braidflow.connectors.http import HttpNodeClient\n"
    imports = braidflow_imports("braidflow.streams.executor", False, source)
    assert forbidden_imports("braidflow.streams.executor", imports) == [
        "braidflow.streams.executor imports braidflow.connectors.http:"
        " streams and connectors are peers"
    ]


def test_relative_and_package_imports_are_resolved() -> None:
    source = "from ..runtime import wiring\nfrom braidflow import streams, task\n"
    imports = braidflow_imports("braidflow.engine.step", False, source)
    assert imports == {"braidflow.runtime", "braidflow.streams", "braidflow.task"}
    assert forbidden_imports("braidflow.engine.step", imports) == [
        "braidflow.engine.step (engine) imports braidflow.runtime (runtime, above it)",
        "braidflow.engine.step (engine) imports braidflow.streams (edge, above it)",
    ]


def unit_graph() -> dict[str, set[str]]:
    """Which top-level modules and packages of braidflow import which others."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        module = module_name(path)
        imports = braidflow_imports(module, path.name == "__init__.py", path.read_text())
        targets = {unit_of(name) if unit_of(name) in RANK else "" for name in imports}
        graph.setdefault(unit_of(module), set()).update(targets - {unit_of(module)})
    return graph


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the path round it, or None."""
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> list[str] | None:
        if unit in path:
            return [*path[path.index(unit) :], unit]
        if unit in done:
            return None
        for target in sorted(graph.get(unit, ())):
            cycle = visit(target, [*path, unit])
            if cycle is not None:
                return cycle
        done.add(unit)
        return None

    return next((c for c in (visit(u, []) for u in sorted(graph)) if c is not None), None)


def test_no_cycle_between_packages() -> None:
    cycle = a_cycle(unit_graph())
    assert cycle is None, "import cycle: " + " -> ".join(c or "braidflow" for c in cycle or [])


def test_a_cycle_is_found() -> None:
    graph = {"config": {"tasks"}, "tasks": {"metrics"}, "metrics": {"config"}}
    assert a_cycle(graph) == ["config", "tasks", "metrics", "config"]
    assert a_cycle({"cli": {"dev"}, "dev": {"runtime"}}) is None
