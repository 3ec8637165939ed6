"""Validation and compilation: a definition document becomes a ready-to-run `Workflow`.

Validation runs every check in one pass and names the node or edge of each
problem; expressions are compiled here once and kept in the `Workflow`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from braidflow.topology.expressions import (
    SCOPE_NAMES,
    Expression,
    ExpressionError,
    ValueTemplate,
    compile_expression,
    compile_value,
)
from braidflow.topology.graph import Graph
from braidflow.topology.loading import (
    MAX_NODES,
    DefinitionError,
    Problem,
    build_definition,
    definition_schema,
    parse_text,
)
from braidflow.topology.model import NODE_TYPES, Definition, Edge, Node

# Params whose values may hold `${...}` templates, by node type.
TEMPLATED_PARAMS: dict[str, tuple[str, ...]] = {
    "task": ("input",),
    "http": ("url", "headers", "query", "body"),
    "transform": ("set",),
    "end": ("output",),
}
BRANCHING_TYPES = frozenset({"decision", "parallel"})


@dataclass(frozen=True, slots=True)
class CompiledEdge:
    index: int
    source: str
    target: str
    when: Expression | None
    default: bool


@dataclass(frozen=True, slots=True)
class CompiledNode:
    node: Node
    params: Mapping[str, ValueTemplate]
    outgoing: tuple[CompiledEdge, ...]
    inbound: tuple[CompiledEdge, ...]

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def type(self) -> str:
        return self.node.type


@dataclass(frozen=True, slots=True)
class Workflow:
    """A valid definition with its graph analysed and its expressions compiled.

    `fail_fast` holds the nodes inside a `parallel` with `fail_fast: true`: their
    failure fails the execution at once. Elsewhere a failure lets work already
    in flight finish (and be recorded) before the execution fails.
    """

    definition: Definition
    graph: Graph
    nodes: Mapping[str, CompiledNode]
    root: str
    input_validator: jsonschema.protocols.Validator | None
    fail_fast: frozenset[str]

    @property
    def id(self) -> str:
        return self.definition.id


@cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(definition_schema())


def load_workflow(text: str | bytes) -> Workflow:
    """Parse, validate and compile definition text; DefinitionError lists every problem."""
    return compile_workflow(parse_text(text))


def validate_text(text: str | bytes) -> list[Problem]:
    """Every problem in definition text; empty when it is valid."""
    try:
        compile_workflow(parse_text(text))
    except DefinitionError as exc:
        return exc.problems
    return []


def compile_workflow(doc: Any) -> Workflow:
    """Validate a parsed document and compile it; DefinitionError lists every problem."""
    problems = list(_structure_problems(doc))
    if not _has_graph_shape(doc):
        raise DefinitionError(problems)
    graph = Graph((n["id"] for n in doc["nodes"]), _raw_edges(doc))
    problems.extend(_graph_problems(doc, graph))
    compiled_params, compiled_edges = {}, []
    for where, result in _compile_expressions(doc, graph):
        if isinstance(result, Problem):
            problems.append(result)
        elif isinstance(where, int):
            compiled_edges.append((where, result))
        else:
            compiled_params[where] = result
    problems.extend(_input_schema_problems(doc))
    if problems:
        raise DefinitionError(problems)
    return _assemble(doc, graph, compiled_params, dict(compiled_edges))


def _has_graph_shape(doc: Any) -> bool:
    """Whether nodes and edges are sound enough for the graph checks to run."""
    if not isinstance(doc, Mapping):
        return False
    nodes, edges = doc.get("nodes"), doc.get("edges")
    return (
        isinstance(nodes, list)
        and len(nodes) <= MAX_NODES
        and isinstance(edges, list)
        and all(
            isinstance(n, Mapping)
            and isinstance(n.get("id"), str)
            and isinstance(n.get("type"), str)
            for n in nodes
        )
        and all(
            isinstance(e, Mapping)
            and isinstance(e.get("from"), str)
            and isinstance(e.get("to"), str)
            for e in edges
        )
    )


def _where_node(doc: Mapping[str, Any], index: int) -> str:
    nodes = doc.get("nodes")
    node = nodes[index] if isinstance(nodes, list) and index < len(nodes) else None
    if isinstance(node, Mapping) and isinstance(node.get("id"), str):
        return f"node '{node['id']}'"
    return f"node #{index + 1}"


def _where_edge(doc: Mapping[str, Any], index: int) -> str:
    edges = doc.get("edges")
    edge = edges[index] if isinstance(edges, list) and index < len(edges) else None
    if isinstance(edge, Mapping) and isinstance(edge.get("from"), str):
        return f"edge '{edge.get('from')} -> {edge.get('to')}'"
    return f"edge #{index + 1}"


def _schema_message(error: jsonschema.ValidationError) -> str:
    field = ".".join(str(p) for p in error.path)
    if error.validator == "oneOf" and field.endswith("wait_for"):
        message = f"{error.instance!r} is not `all`, `any` or a positive number"
    elif error.validator == "oneOf" and field.endswith("expect_status"):
        message = f"{error.instance!r} is not a status code or a list of status codes"
    elif error.validator == "pattern" and isinstance(error.instance, str):
        message = f"{error.instance!r} does not match {error.validator_value}"
    else:
        message = error.message
    return f"{field}: {message}" if field else message


def _structure_problems(doc: Any) -> Iterator[Problem]:
    if not isinstance(doc, Mapping):
        yield Problem("definition", "must be a mapping with id, nodes and edges")
        return
    nodes = doc.get("nodes")
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        yield Problem("definition", f"has {len(nodes)} nodes, over the limit of {MAX_NODES}")
        return
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        path = list(error.path)
        if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
            where, rest = _where_node(doc, path[1]), path[2:]
            if rest == ["type"] and error.validator == "enum":
                known = ", ".join(sorted(NODE_TYPES))
                yield Problem(where, f"unknown type {error.instance!r} (known: {known})")
                continue
        elif len(path) >= 2 and path[0] == "edges" and isinstance(path[1], int):
            where, rest = _where_edge(doc, path[1]), path[2:]
        else:
            where, rest = "definition", path
        error.path.clear()
        error.path.extend(rest)
        yield Problem(where, _schema_message(error))


def _raw_edges(doc: Mapping[str, Any]) -> list[Edge]:
    return [Edge(e["from"], e["to"], e.get("when"), e.get("default", False)) for e in doc["edges"]]


def _graph_problems(doc: Mapping[str, Any], graph: Graph) -> Iterator[Problem]:
    types: dict[str, str] = {}
    for n in doc["nodes"]:
        if n["id"] in types:
            yield Problem(f"node '{n['id']}'", "duplicate id")
        else:
            types[n["id"]] = n["type"]
    seen_edges: set[tuple[str, str]] = set()
    defaults: dict[str, int] = {}
    for e in doc["edges"]:
        where = f"edge '{e['from']} -> {e['to']}'"
        if not isinstance(e.get("when", ""), str):
            continue
        for end in ("from", "to"):
            if e[end] not in types:
                yield Problem(where, f"{end}: {e[end]!r} is not a node")
        if (e["from"], e["to"]) in seen_edges:
            yield Problem(where, "defined twice")
        seen_edges.add((e["from"], e["to"]))
        source_type = types.get(e["from"])
        if source_type not in NODE_TYPES:
            continue
        if e.get("default"):
            if source_type != "decision":
                yield Problem(where, "`default` is only for edges out of a decision")
            elif "when" in e:
                yield Problem(where, "a default edge takes no `when`")
            defaults[e["from"]] = defaults.get(e["from"], 0) + 1
        if "when" in e and source_type not in BRANCHING_TYPES:
            yield Problem(where, "`when` is only for edges out of a decision or parallel")
        if source_type == "decision" and "when" not in e and not e.get("default"):
            yield Problem(where, "an edge out of a decision needs `when` or `default: true`")

    roots = graph.roots
    if not roots:
        yield Problem("definition", "has no root: every node has an inbound edge")
    elif len(roots) > 1:
        yield Problem(
            "definition",
            f"has {len(roots)} roots ({', '.join(roots)}); exactly one node may have no inbound edge",
        )
    cycles = graph.cycles()
    for cycle in cycles:
        yield Problem(f"node '{cycle[0]}'", f"is on a cycle: {' -> '.join([*cycle, cycle[0]])}")
    if len(roots) == 1:
        reachable = graph.reachable(roots)
        for node in graph.nodes:
            if node not in reachable:
                yield Problem(f"node '{node}'", f"is unreachable from the root '{roots[0]}'")
    # A node of unknown type is already reported; it might be meant as an end, so
    # it does not add "cannot reach an end" noise on top.
    unknown = {n for n, t in types.items() if t not in NODE_TYPES}
    ends = [n for n, t in types.items() if t == "end"]
    if not ends and not unknown:
        yield Problem("definition", "has no `end` node")
    reaches_end = graph.reachable([*ends, *unknown], backwards=True)
    for node in graph.nodes:
        node_type, out = types[node], graph.successors[node]
        if node_type == "end" or node in unknown:
            if out:
                yield Problem(f"node '{node}'", "is an end but has outgoing edges")
            continue
        if not out:
            yield Problem(f"node '{node}'", "has no outgoing edge and is not an end")
        elif node not in reaches_end:
            yield Problem(f"node '{node}'", "cannot reach an end")
        if node_type == "decision" and defaults.get(node, 0) == 0:
            yield Problem(f"node '{node}'", "a decision needs an edge with `default: true`")
        if defaults.get(node, 0) > 1:
            yield Problem(f"node '{node}'", "a decision may have only one default edge")
        if node_type in NODE_TYPES - BRANCHING_TYPES and len(out) > 1:
            yield Problem(
                f"node '{node}'",
                f"a {node_type} node has {len(out)} outgoing edges; only decision and"
                " parallel nodes branch",
            )
        if node_type == "join" and len(graph.predecessors[node]) < 2:
            yield Problem(f"node '{node}'", "a join needs at least two inbound edges")
    for n in doc["nodes"]:
        params = n.get("params")
        wait_for = params.get("wait_for") if isinstance(params, Mapping) else None
        inbound = len(graph.predecessors.get(n["id"], ()))
        if n["type"] == "join" and isinstance(wait_for, int) and wait_for > inbound:
            yield Problem(
                f"node '{n['id']}'", f"wait_for {wait_for} is more than its {inbound} inbound edges"
            )


def _reference_problems(
    expression: Expression, where: str, reader: str, doc: Mapping[str, Any], graph: Graph
) -> Iterator[Problem]:
    text = f"`{expression.source}`"
    for name in sorted(expression.names - SCOPE_NAMES):
        yield Problem(
            where, f"{text}: unknown name '{name}' (in scope: {', '.join(sorted(SCOPE_NAMES))})"
        )
    before = graph.ancestors.get(reader, frozenset()) | {reader}
    for node in sorted(expression.nodes):
        if node not in graph.successors:
            yield Problem(where, f"{text}: unknown node '{node}'")
        elif node not in before:
            yield Problem(where, f"{text}: node '{node}' does not run before '{reader}'")
    variables = doc.get("variables") or {}
    for var in sorted(expression.members("vars") - set(variables)):
        yield Problem(where, f"{text}: unknown variable '{var}'")


def _compile_expressions(
    doc: Mapping[str, Any], graph: Graph
) -> Iterator[tuple[int | tuple[str, str], Any]]:
    """Yield (edge index, Expression) / ((node, param), ValueTemplate) or (_, Problem)."""
    for index, e in enumerate(doc["edges"]):
        if not isinstance(e.get("when"), str):
            continue
        where = f"edge '{e['from']} -> {e['to']}'"
        try:
            expression = compile_expression(e["when"])
        except ExpressionError as exc:
            yield index, Problem(where, f"when: {exc}")
            continue
        problems = list(_reference_problems(expression, where, e["from"], doc, graph))
        yield from ((index, p) for p in problems)
        if not problems:
            yield index, expression
    for n in doc["nodes"]:
        params = n.get("params") or {}
        if not isinstance(params, Mapping):
            continue
        for name in TEMPLATED_PARAMS.get(n["type"], ()):
            if name not in params:
                continue
            where = f"node '{n['id']}'"
            try:
                template = compile_value(params[name])
            except ExpressionError as exc:
                yield (n["id"], name), Problem(where, f"params.{name}: {exc}")
                continue
            problems = [
                Problem(where, f"params.{name}: {p.message}")
                for expression in template.expressions()
                for p in _reference_problems(expression, where, n["id"], doc, graph)
            ]
            yield from (((n["id"], name), p) for p in problems)
            if not problems:
                yield (n["id"], name), template


def _input_schema_problems(doc: Mapping[str, Any]) -> Iterator[Problem]:
    schema = doc.get("input")
    if schema is None:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = ".".join(str(p) for p in exc.path)
        yield Problem(
            "definition", f"input: invalid JSON Schema{' at ' + at if at else ''}: {exc.message}"
        )


def _assemble(
    doc: Mapping[str, Any],
    graph: Graph,
    params: Mapping[tuple[str, str], ValueTemplate],
    conditions: Mapping[int, Expression],
) -> Workflow:
    definition = build_definition(doc)
    edges = [
        CompiledEdge(i, e.source, e.target, conditions.get(i), e.default)
        for i, e in enumerate(definition.edges)
    ]
    nodes = {
        node.id: CompiledNode(
            node=node,
            params={name: t for (nid, name), t in params.items() if nid == node.id},
            outgoing=tuple(e for e in edges if e.source == node.id),
            inbound=tuple(e for e in edges if e.target == node.id),
        )
        for node in definition.nodes
    }
    validator = (
        jsonschema.Draft202012Validator(definition.input_schema)
        if definition.input_schema is not None
        else None
    )
    fail_fast = frozenset(
        member
        for group in graph.parallel_groups(
            n.id for n in definition.nodes if n.type == "parallel" and n.params.get("fail_fast")
        )
        for branch in group.branches
        for member in branch
    )
    return Workflow(definition, graph, nodes, graph.roots[0], validator, fail_fast)
