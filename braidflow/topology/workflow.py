"""Validation and compilation: a definition document becomes a ready-to-run `Workflow`.

Validation runs every check in one pass and names the node or edge of each
problem; expressions are compiled here once and kept in the `Workflow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

import jsonschema

from braidflow.topology.edge_labels import LABELLED_SOURCE, label_problems
from braidflow.topology.expressions import (
    SCOPE_NAMES,
    Expression,
    ExpressionError,
    ValueTemplate,
    compile_expression,
    compile_value,
)
from braidflow.topology.graph import Graph
from braidflow.topology.kinds import (
    BRANCHING_TYPES,
    ERROR_EDGE_SOURCES,
    ITERATION_TYPES,
    KINDS,
    NODE_TYPES,
    TEMPLATED_PARAMS,
    TIMEOUT_EDGE_SOURCES,
    WORK_TYPES,
    definition_schema,
)
from braidflow.topology.limits import MAX_NODES, LimitError
from braidflow.topology.loading import (
    DefinitionError,
    Problem,
    build_definition,
    build_edge,
    declared_variables,
    parse_text,
)
from braidflow.topology.model import Definition, Edge, Node, Trigger
from braidflow.topology.node_params import (
    delay_ms,
    item_node,
    join_timeout_ms,
    join_wait_for,
    param_problems,
    reply_validator,
    schema_problem,
)
from braidflow.topology.secret_references import SECRET_PARAMS, reference
from braidflow.topology.suggestions import did_you_mean
from braidflow.topology.triggers import compile_triggers, trigger_where

_GLOB_CHARS = frozenset("*?[")
_Key = TypeVar("_Key")


@dataclass(frozen=True, slots=True)
class CompiledEdge:
    index: int
    source: str
    target: str
    when: Expression | None
    default: bool
    timeout: bool = False
    on_error: bool = False
    label: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledNode:
    """A node with its templates compiled, and what its params mean, parsed.

    `correlate` is a wait_event's compiled condition, `reply_validator` checks
    the `data` of an approval's reply, `delay_ms` is a delay's `for`,
    `join_timeout_ms` a join's timeout, `wait_for` how many inbound branches it
    waits for (`all` but for a join), and `item_node` the inline task or http
    node a foreach runs per item (its templates read `item` and `index`).
    """

    node: Node
    params: Mapping[str, ValueTemplate]
    outgoing: tuple[CompiledEdge, ...]
    inbound: tuple[CompiledEdge, ...]
    correlate: Expression | None = None
    reply_validator: jsonschema.protocols.Validator | None = None
    delay_ms: int | None = None
    join_timeout_ms: int | None = None
    item_node: CompiledNode | None = None
    wait_for: int | str = "all"

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
    `trigger_conditions` maps the index of an event trigger in `triggers` to its
    compiled `when`.
    """

    definition: Definition
    graph: Graph
    nodes: Mapping[str, CompiledNode]
    root: str
    input_validator: jsonschema.protocols.Validator | None
    fail_fast: frozenset[str]
    triggers: tuple[Trigger, ...] = ()
    trigger_conditions: Mapping[int, Expression] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.definition.id


def _schema_validator() -> jsonschema.Draft202012Validator:
    return _validator_of(tuple(KINDS))


@cache
def _validator_of(kinds: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    """The format's validator while `kinds` are registered (more may be added at start)."""
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
    nodes = doc.get("nodes") if isinstance(doc, Mapping) else None
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        raise DefinitionError.over(
            LimitError(f"the definition has {len(nodes)} nodes, over the limit of {MAX_NODES}")
        )
    problems = list(_structure_problems(doc))
    # Triggers do not depend on the graph: their problems are found even when it is broken.
    triggers = _collect(compile_triggers(doc), problems) if isinstance(doc, Mapping) else {}
    if isinstance(doc, Mapping):
        problems.extend(param_problems(doc))
    if not _has_graph_shape(doc):
        raise DefinitionError(problems)
    graph = Graph((n["id"] for n in doc["nodes"]), _raw_edges(doc))
    problems.extend(_graph_problems(doc, graph))
    problems.extend(label_problems(doc))
    conditions = _collect(_compile_conditions(doc, graph), problems)
    params = _collect(_compile_params(doc, graph), problems)
    item_params = _collect(_compile_item_params(doc, graph), problems)
    correlations = _collect(_compile_waits(doc, graph), problems)
    problems.extend(_input_schema_problems(doc))
    if problems:
        raise DefinitionError(problems)
    return _assemble(doc, graph, conditions, params, item_params, correlations, triggers)


def _collect(results: Iterable[tuple[_Key, Any]], problems: list[Problem]) -> dict[_Key, Any]:
    """The compiled results by key; problems among them go to `problems`."""
    compiled: dict[_Key, Any] = {}
    for key, result in results:
        if isinstance(result, Problem):
            problems.append(result)
        else:
            compiled[key] = result
    return compiled


def _has_graph_shape(doc: Any) -> bool:
    """Whether nodes and edges are sound enough for the graph checks to run."""
    if not isinstance(doc, Mapping):
        return False
    nodes, edges = doc.get("nodes"), doc.get("edges")
    return (
        isinstance(nodes, list)
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
    elif error.validator == "type" and isinstance(error.instance, bool):
        message = f"{error.message}{_yaml_boolean_hint(error.instance)}"
    else:
        message = error.message
    return f"{field}: {message}" if field else message


def _yaml_boolean_hint(value: bool) -> str:
    """YAML 1.1 reads an unquoted yes, no, on, off (any case) as a boolean: say so."""
    words = "yes, on or true" if value else "no, off or false"
    return (
        f" (YAML read an unquoted {words} as the boolean {str(value).lower()};"
        f" quote it, e.g. '{words.split(',')[0]}', to keep it text)"
    )


_TRIGGER_KINDS = ("event", "webhook", "schedule")
_TRIGGER_KIND_CHECKS = frozenset({"minProperties", "maxProperties", "additionalProperties"})


def _trigger_kind_message(trigger: Mapping[str, Any]) -> str:
    kinds = ", ".join(f"`{k}`" for k in _TRIGGER_KINDS)
    given = ", ".join(f"`{k}`" for k in trigger) or "nothing"
    return f"needs exactly one of {kinds}; has {given}"


def _structure_problems(doc: Any) -> Iterator[Problem]:
    if not isinstance(doc, Mapping):
        yield Problem("definition", "must be a mapping with id, nodes and edges")
        return
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.path])
    kind_reported: set[str] = set()
    for error in errors:
        path = list(error.path)
        if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
            where, rest = _where_node(doc, path[1]), path[2:]
            if rest == ["type"] and error.validator == "enum":
                known = ", ".join(sorted(NODE_TYPES))
                given = error.instance
                hint = did_you_mean(given, NODE_TYPES) if isinstance(given, str) else ""
                yield Problem(where, f"unknown type {error.instance!r}{hint} (known: {known})")
                continue
        elif len(path) >= 2 and path[0] == "edges" and isinstance(path[1], int):
            where, rest = _where_edge(doc, path[1]), path[2:]
        elif len(path) >= 2 and path[0] == "triggers" and isinstance(path[1], int):
            where, rest = trigger_where(path[1]), path[2:]
            if not rest and error.validator in _TRIGGER_KIND_CHECKS:
                # Too few, too many and unknown keys all mean one thing; say it once.
                if where not in kind_reported:
                    kind_reported.add(where)
                    yield Problem(where, _trigger_kind_message(error.instance))
                continue
        else:
            where, rest = "definition", path
        error.path.clear()
        error.path.extend(rest)
        yield Problem(where, _schema_message(error))


def _raw_edges(doc: Mapping[str, Any]) -> list[Edge]:
    return [build_edge(e) for e in doc["edges"]]


def _graph_problems(doc: Mapping[str, Any], graph: Graph) -> Iterator[Problem]:
    types: dict[str, str] = {}
    for n in doc["nodes"]:
        if n["id"] in types:
            yield Problem(f"node '{n['id']}'", "duplicate id")
        else:
            types[n["id"]] = n["type"]
    seen_edges: set[tuple[str, str]] = set()
    # A classify node whose edges name labels branches by the label it chose.
    labelled = {e["from"] for e in doc["edges"] if "label" in e}
    defaults: dict[str, int] = {}
    timeout_edges: dict[str, int] = {}
    error_edges: dict[str, int] = {}
    for e in doc["edges"]:
        where = f"edge '{e['from']} -> {e['to']}'"
        if not isinstance(e.get("when", ""), str):
            continue
        for end in ("from", "to"):
            if e[end] not in types:
                hint = did_you_mean(e[end], types)
                yield Problem(where, f"{end}: {e[end]!r} is not a node{hint}")
        if (e["from"], e["to"]) in seen_edges:
            yield Problem(where, "defined twice")
        seen_edges.add((e["from"], e["to"]))
        source_type = types.get(e["from"])
        if source_type not in NODE_TYPES:
            continue
        if e.get("on_error") is True:
            yield from _error_edge_problems(e, source_type, where)
            if e["to"] in types:
                error_edges[e["from"]] = error_edges.get(e["from"], 0) + 1
            continue
        if e.get("timeout") is True:
            yield from _timeout_edge_problems(e, source_type, where)
            if e["to"] in types:
                timeout_edges[e["from"]] = timeout_edges.get(e["from"], 0) + 1
            continue
        if e.get("default"):
            if source_type not in ("decision", LABELLED_SOURCE):
                yield Problem(where, "`default` is only for edges out of a decision or classify")
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
    # it adds no "cannot reach an end" noise on top, and no problem of its own.
    unknown = {n for n, t in types.items() if t not in NODE_TYPES}
    ends = [n for n, t in types.items() if t == "end"]
    if not ends and not unknown:
        yield Problem("definition", "has no `end` node")
    reaches_end = graph.reachable([*ends, *unknown], backwards=True)
    raw_nodes: dict[str, Mapping[str, Any]] = {}
    for n in doc["nodes"]:
        raw_nodes.setdefault(n["id"], n)
    for node in graph.nodes:
        node_type, out = types[node], graph.successors[node]
        if node in unknown:
            continue
        if node_type == "end":
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
            yield Problem(f"node '{node}'", f"a {node_type} may have only one default edge")
        # Timeout and on_error edges are alternatives to the normal way on, not branches.
        timed = timeout_edges.get(node, 0) if node_type in TIMEOUT_EDGE_SOURCES else 0
        errored = error_edges.get(node, 0) if node_type in ERROR_EDGE_SOURCES else 0
        normal, besides = len(out) - timed - errored, _besides(timed, errored)
        if timed:
            yield from _timeout_source_problems(raw_nodes[node], timed)
        if errored > 1:
            yield Problem(f"node '{node}'", f"a {node_type} node may have only one on_error edge")
        if normal == 0 and besides:
            yield Problem(f"node '{node}'", f"a {node_type} node needs one outgoing edge{besides}")
        branches = node_type in BRANCHING_TYPES or (
            node_type == LABELLED_SOURCE and node in labelled
        )
        if not branches and normal > 1:
            yield Problem(
                f"node '{node}'",
                f"a {node_type} node has {normal} outgoing edges{besides}; only"
                " decision and parallel nodes branch",
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


def _timeout_edge_problems(
    edge: Mapping[str, Any], source_type: str, where: str
) -> Iterator[Problem]:
    if source_type not in TIMEOUT_EDGE_SOURCES:
        kinds = " or ".join(sorted(TIMEOUT_EDGE_SOURCES))
        yield Problem(where, f"`timeout` edges leave only {kinds} nodes")
    if "when" in edge:
        yield Problem(where, "a timeout edge takes no `when`")
    if edge.get("default"):
        yield Problem(where, "a timeout edge takes no `default`")


def _timeout_source_problems(node: Mapping[str, Any], timed: int) -> Iterator[Problem]:
    where, kind = f"node '{node['id']}'", node["type"]
    if timed > 1:
        yield Problem(where, f"a {kind} node may have only one timeout edge")
    params = node.get("params")
    if "timeout" not in node and not (isinstance(params, Mapping) and "timeout" in params):
        yield Problem(where, "has a timeout edge but no `timeout`")


def _error_edge_problems(
    edge: Mapping[str, Any], source_type: str, where: str
) -> Iterator[Problem]:
    if source_type not in ERROR_EDGE_SOURCES:
        *others, last = sorted(ERROR_EDGE_SOURCES)
        yield Problem(where, f"`on_error` edges leave only {', '.join(others)} or {last} nodes")
    if "when" in edge:
        yield Problem(where, "an on_error edge takes no `when`")
    if edge.get("default"):
        yield Problem(where, "an on_error edge takes no `default`")
    if edge.get("timeout"):
        yield Problem(where, "an on_error edge takes no `timeout`")


def _besides(timed: int, errored: int) -> str:
    """` besides its timeout edge`, `... on_error edge`, `... timeout and on_error edges`, or ``."""
    kinds = [kind for kind, count in (("timeout", timed), ("on_error", errored)) if count]
    if not kinds:
        return ""
    return f" besides its {' and '.join(kinds)} edge{'s' if len(kinds) > 1 else ''}"


_SECRET_ELSEWHERE = (
    "{} may be named only as a `${{secrets.NAME}}` hole of its own in an http node's url,"
    " headers, query or body, where the executor puts its value in at the moment of the call;"
    " anywhere else the value would end up in the execution's state"
)


def _reference_problems(
    expression: Expression,
    where: str,
    reader: str,
    doc: Mapping[str, Any],
    graph: Graph,
    *,
    own_output: bool = True,
    scope: frozenset[str] = SCOPE_NAMES,
) -> Iterator[Problem]:
    """Unknown names, variables and nodes, and nodes that do not run before `reader`.

    `own_output`: whether `reader`'s own output is there when the expression runs
    (an edge condition reads its source's output). `scope`: the names it may read.
    """
    text = f"`{expression.source}`"
    if "secrets" in expression.names:
        yield Problem(where, f"{text}: {_SECRET_ELSEWHERE.format('a secret')}")
    for name in sorted(expression.names - scope - {"secrets"}):
        yield Problem(
            where, f"{text}: unknown name '{name}' (in scope: {', '.join(sorted(scope))})"
        )
    before = graph.ancestors.get(reader, frozenset()) | ({reader} if own_output else set())
    for node in sorted(expression.nodes):
        if node not in graph.successors:
            hint = did_you_mean(node, graph.successors)
            yield Problem(where, f"{text}: unknown node '{node}'{hint}")
        elif node not in before:
            yield Problem(where, f"{text}: node '{node}' does not run before '{reader}'")
    for var in sorted(expression.members("vars") - declared_variables(doc)):
        yield Problem(where, f"{text}: unknown variable '{var}'")


def _compile_conditions(
    doc: Mapping[str, Any], graph: Graph
) -> Iterator[tuple[int, Expression | Problem]]:
    """Yield (edge index, its compiled `when`) or (edge index, Problem)."""
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


def _compile_params(
    doc: Mapping[str, Any], graph: Graph
) -> Iterator[tuple[tuple[str, str], ValueTemplate | Problem]]:
    """Yield ((node, param), its compiled template) or ((node, param), Problem)."""
    for n in doc["nodes"]:
        params = n.get("params") or {}
        if not isinstance(params, Mapping):
            continue
        spec = KINDS.get(n["type"])
        if spec is None:
            continue
        for name in spec.templated:
            if name in params:
                bound = spec.bound_names if name in spec.bound_params else frozenset()
                label = f"params.{name}"
                yield from _compile_param(
                    doc, graph, (n["id"], n["type"]), name, params[name], label, bound
                )


def _compile_item_params(
    doc: Mapping[str, Any], graph: Graph
) -> Iterator[tuple[tuple[str, str], ValueTemplate | Problem]]:
    """Yield ((foreach node, param), the compiled template) of each inline `do`, or Problems."""
    for n in doc["nodes"]:
        do = _inline_do(n)
        if do is None:
            continue
        for name in TEMPLATED_PARAMS[do["type"]]:
            if name in do["params"]:
                label = f"params.do.params.{name}"
                value = do["params"][name]
                bound = KINDS[n["type"]].bound_names
                yield from _compile_param(
                    doc, graph, (n["id"], do["type"]), name, value, label, bound
                )


def _inline_do(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A foreach's or a loop's inline `do` node; None for a workflow `do` and one the JSON Schema
    refused."""
    params = node.get("params")
    iterates = node["type"] in ITERATION_TYPES and isinstance(params, Mapping)
    do = params.get("do") if iterates else None
    if (
        isinstance(do, Mapping)
        and do.get("type") in WORK_TYPES
        and isinstance(do.get("params"), Mapping)
    ):
        return do
    return None


def _compile_param(
    doc: Mapping[str, Any],
    graph: Graph,
    node: tuple[str, str],
    name: str,
    value: Any,
    label: str,
    bound: frozenset[str],
) -> Iterator[tuple[tuple[str, str], ValueTemplate | Problem]]:
    """Compile one param of `node` (id, kind), `label` naming it in problems.

    `bound`: the names it reads besides the scope's (a foreach's `item` and `index`)."""
    node_id, kind = node
    where = f"node '{node_id}'"
    try:
        template = compile_value(value)
    except ExpressionError as exc:
        yield (node_id, name), Problem(where, f"{label}: {exc}")
        return
    scope = SCOPE_NAMES | bound
    problems = [
        Problem(where, f"{label}: {p.message}")
        for expression in template.expressions()
        for p in _reference_problems(expression, where, node_id, doc, graph, scope=scope)
    ]
    if name not in SECRET_PARAMS.get(kind, ()):
        problems.extend(
            Problem(where, f"{label}: " + _SECRET_ELSEWHERE.format(f"`{reference(secret)}`"))
            for secret in sorted(template.secrets())
        )
    yield from (((node_id, name), p) for p in problems)
    if not problems:
        yield (node_id, name), template


def _compile_waits(
    doc: Mapping[str, Any], graph: Graph
) -> Iterator[tuple[str, Expression | Problem]]:
    """Check wait_event params; yield (node, its compiled `correlate`) or (node, Problem)."""
    for n in doc["nodes"]:
        params = n.get("params")
        if n["type"] != "wait_event" or not isinstance(params, Mapping):
            continue
        node_id, where = n["id"], f"node '{n['id']}'"
        if "timeout" in n and "timeout" in params:
            yield node_id, Problem(where, "has `timeout` and `params.timeout`; give only one")
        event_type = params.get("type")
        if isinstance(event_type, str) and ("${" in event_type or _GLOB_CHARS & set(event_type)):
            yield (
                node_id,
                Problem(
                    where,
                    f"params.type: {event_type!r} is a pattern or template; a wait_event waits"
                    " for one exact CloudEvent type",
                ),
            )
        elif isinstance(event_type, str) and any(c.isspace() for c in event_type):
            yield node_id, Problem(where, f"params.type: {event_type!r} contains whitespace")
        if isinstance(params.get("correlate"), str):
            yield from ((node_id, r) for r in _correlation(params["correlate"], n, doc, graph))


def _correlation(
    source: str, node: Mapping[str, Any], doc: Mapping[str, Any], graph: Graph
) -> Iterator[Expression | Problem]:
    """The compiled `correlate`, or every problem with it.

    It runs when an event arrives, before the wait node has an output, with
    `event` bound to the arriving event.
    """
    where = f"node '{node['id']}'"
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        yield Problem(where, f"params.correlate: {exc}")
        return
    problems = [
        Problem(where, f"params.correlate: {p.message}")
        for p in _reference_problems(expression, where, node["id"], doc, graph, own_output=False)
    ]
    yield from problems or [expression]


def _input_schema_problems(doc: Mapping[str, Any]) -> Iterator[Problem]:
    schema = doc.get("input")
    if schema is not None and (problem := schema_problem(schema)):
        yield Problem("definition", f"input: {problem}")


def _compiled_item_node(
    node: Node, item_params: Mapping[tuple[str, str], ValueTemplate]
) -> CompiledNode | None:
    """A foreach's or a loop's inline node with its templates; it has no edges of its own."""
    inline = item_node(node)
    if inline is None:
        return None
    templates = {name: t for (nid, name), t in item_params.items() if nid == node.id}
    return CompiledNode(node=inline, params=templates, outgoing=(), inbound=())


def _assemble(
    doc: Mapping[str, Any],
    graph: Graph,
    conditions: Mapping[int, Expression],
    params: Mapping[tuple[str, str], ValueTemplate],
    item_params: Mapping[tuple[str, str], ValueTemplate],
    correlations: Mapping[str, Expression],
    trigger_conditions: Mapping[int, Expression],
) -> Workflow:
    definition = build_definition(doc)
    edges = [
        CompiledEdge(
            i, e.source, e.target, conditions.get(i), e.default, e.timeout, e.on_error, e.label
        )
        for i, e in enumerate(definition.edges)
    ]
    nodes = {
        node.id: CompiledNode(
            node=node,
            params={name: t for (nid, name), t in params.items() if nid == node.id},
            outgoing=tuple(e for e in edges if e.source == node.id),
            inbound=tuple(e for e in edges if e.target == node.id),
            correlate=correlations.get(node.id),
            reply_validator=reply_validator(node),
            delay_ms=delay_ms(node),
            join_timeout_ms=join_timeout_ms(node),
            item_node=_compiled_item_node(node, item_params),
            wait_for=join_wait_for(node),
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
    return Workflow(
        definition,
        graph,
        nodes,
        graph.roots[0],
        validator,
        fail_fast,
        definition.triggers,
        trigger_conditions,
    )
