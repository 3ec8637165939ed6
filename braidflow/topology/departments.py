"""Department definitions (`kind: Department`): their model, loading and validation, and
what they mean for their workflows: shared context, settings defaults and who may call them.

Pure: the runtime stores departments (braidflow.streams.departments) and applies these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from braidflow.topology.credentials import url_secrets
from braidflow.topology.durations import parse_duration
from braidflow.topology.expressions import Expression
from braidflow.topology.kinds import KINDS
from braidflow.topology.loading import DefinitionError, Problem, build_retry, parse_text
from braidflow.topology.model import Retry
from braidflow.topology.workflow import CompiledNode, Workflow

ANY_CALLER = "any"

# Cheap first look, so a workflow's text is not parsed twice: a top-level `kind` in YAML
# block style, or a `"kind"` key anywhere in JSON (then the parse decides).
_KIND_HINT = re.compile(r'(?m)^kind\s*:|"kind"\s*:')


@dataclass(frozen=True, slots=True)
class Department:
    """A department: its shared context, the defaults of its workflows' work nodes, and
    the departments whose workflows may call its workflows (`any`, or names)."""

    name: str
    description: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    node_timeout_ms: int | None = None
    retry: Retry | None = None
    allow_callers: tuple[str, ...] | str = ()
    # Secret names its workflows may use; None: it lists none (braidflow.secrets.SecretsAllowed).
    credentials: frozenset[str] | None = None
    # Webhook URLs called when an execution of it fails or times out (docs/departments.md).
    alert_webhooks: tuple[str, ...] = ()
    # Executions of the department that may run at once; None: no cap (docs/departments.md).
    max_concurrent_executions: int | None = None
    # The SLA of its workflows that set none (docs/analytics.md); None: none.
    sla_ms: int | None = None
    # What one execution may spend (`settings.budget.per_execution`); None: no limit.
    budget_per_execution: float | None = None
    # What its executions that end in one UTC day may spend (`settings.budget.per_day`).
    budget_per_day: float | None = None

    def allows(self, caller: str | None) -> bool:
        """Whether a workflow of department `caller` (None: of none) may call one of this."""
        if caller == self.name or self.allow_callers == ANY_CALLER:
            return True
        return caller is not None and caller in self.allow_callers


@cache
def department_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a department definition."""
    text = resources.files("braidflow.topology").joinpath("department.schema.json").read_text()
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(department_schema())


def declares_department(doc: Any) -> bool:
    """Whether a parsed document is a department definition rather than a workflow."""
    return isinstance(doc, Mapping) and doc.get("kind") == "Department"


def may_declare_department(text: str) -> bool:
    """False when `text` surely is no department definition (no parse needed to tell)."""
    return _KIND_HINT.search(text) is not None


def load_department(text: str | bytes) -> Department:
    """Parse and validate department text; DefinitionError names each field at fault."""
    return compile_department(parse_text(text))


def compile_department(doc: Any) -> Department:
    """A validated department from a parsed document; DefinitionError lists every problem."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.path)))
    if errors:
        raise DefinitionError([_problem(e) for e in errors])
    settings = doc.get("settings") or {}
    listed = doc.get("credentials")
    unlisted = [
        Problem(
            f"settings.alert_channels.{i}.webhook",
            f"secret {name!r} is not among the department's credentials",
        )
        for i, channel in enumerate(settings.get("alert_channels", ()))
        for name in url_secrets(channel["webhook"])
        if listed is not None and name not in listed
    ]
    if unlisted:
        raise DefinitionError(unlisted)
    callers = doc.get("allow_callers", ())
    return Department(
        name=doc["name"],
        description=doc.get("description"),
        context=doc.get("context") or {},
        node_timeout_ms=(
            parse_duration(settings["node_timeout"]) if "node_timeout" in settings else None
        ),
        retry=build_retry(settings.get("retry")),
        allow_callers=callers if isinstance(callers, str) else tuple(callers),
        credentials=frozenset(doc["credentials"]) if "credentials" in doc else None,
        alert_webhooks=tuple(c["webhook"] for c in settings.get("alert_channels", ())),
        max_concurrent_executions=settings.get("max_concurrent_executions"),
        sla_ms=parse_duration(settings["sla"]) if "sla" in settings else None,
        budget_per_execution=_amount(settings.get("budget", {}).get("per_execution")),
        budget_per_day=_amount(settings.get("budget", {}).get("per_day")),
    )


def _amount(value: Any) -> float | None:
    return None if value is None else float(value)


def _problem(error: jsonschema.ValidationError) -> Problem:
    field_path = ".".join(str(p) for p in error.path)
    if error.validator == "oneOf" and field_path == "allow_callers":
        message = f"{error.instance!r} is not `any` or a list of department names"
    else:
        message = error.message
    return Problem(field_path or "department", message)


def with_defaults(workflow: Workflow, department: Department | None) -> Workflow:
    """`workflow` with the department's node timeout and retry on its work nodes that set
    none, its SLA when the workflow sets none, and its budgets; the same object when there is
    nothing to apply."""
    if department is None:
        return workflow
    budgets = (department.budget_per_execution, department.budget_per_day)
    if budgets != (workflow.definition.budget, workflow.definition.budget_per_day):
        definition = replace(workflow.definition, budget=budgets[0], budget_per_day=budgets[1])
        workflow = replace(workflow, definition=definition)
    if department.sla_ms is not None and workflow.definition.sla_ms is None:
        definition = replace(workflow.definition, sla_ms=department.sla_ms)
        workflow = replace(workflow, definition=definition)
    if department.node_timeout_ms is None and department.retry is None:
        return workflow
    nodes = dict(workflow.nodes)
    for node_id, compiled in workflow.nodes.items():
        node = compiled.node
        if KINDS[node.type].family != "work":
            continue
        timeout = node.timeout_ms if node.timeout_ms is not None else department.node_timeout_ms
        retry = node.retry if node.retry is not None else department.retry
        if (timeout, retry) != (node.timeout_ms, node.retry):
            nodes[node_id] = replace(compiled, node=replace(node, timeout_ms=timeout, retry=retry))
    return replace(workflow, nodes=nodes)


def call_refusal(
    caller_workflow: str, caller: str | None, called_workflow: str, called: Department
) -> str | None:
    """Why a workflow of department `caller` may not call `called_workflow` of department
    `called` as a sub-workflow; None when it may."""
    if called.allows(caller):
        return None
    who = f"department {caller!r}" if caller is not None else "no department"
    allowed = ", ".join(repr(c) for c in called.allow_callers) if called.allow_callers else "none"
    return (
        f"workflow {caller_workflow!r} of {who} may not call workflow {called_workflow!r} of"
        f" department {called.name!r}: its allow_callers lets in {allowed}"
        f" besides its own workflows"
    )


def unknown_context_names(workflow: Workflow, department: Department) -> list[Problem]:
    """`dept.*` names a workflow reads that its department does not define, by node."""
    problems = []
    for node_id, compiled in workflow.nodes.items():
        read = {
            name
            for expression in _expressions(compiled)
            for name in expression.members("dept")
            if name not in department.context
        }
        problems.extend(
            Problem(
                f"node '{node_id}'",
                f"dept.{name}: department {department.name!r} has no context variable {name!r}",
            )
            for name in sorted(read)
        )
    return problems


def _expressions(node: CompiledNode) -> Iterator[Expression]:
    """Every expression a node reads: its params' templates, its conditions, its item node's."""
    for template in node.params.values():
        yield from template.expressions()
    yield from (edge.when for edge in node.outgoing if edge.when is not None)
    if node.correlate is not None:
        yield node.correlate
    if node.item_node is not None:
        yield from _expressions(node.item_node)


def called_workflows(workflow: Workflow) -> list[tuple[str, str]]:
    """(node id, workflow id) of each workflow a node starts as a child: a subworkflow's
    `workflow`, a loop's or foreach's `do` when it names a workflow."""
    calls = []
    for node_id, compiled in workflow.nodes.items():
        params = compiled.node.params
        called = params.get("workflow") if compiled.type == "subworkflow" else None
        if compiled.type in ("loop", "foreach") and isinstance(params.get("do"), str):
            called = params["do"]
        if isinstance(called, str):
            calls.append((node_id, called))
    return calls


def refused_calls(
    workflow: Workflow, department_of: Callable[[str], Department | None]
) -> list[Problem]:
    """The calls of `workflow` the called workflow's department refuses, by node;
    `department_of(workflow id)` is the department definition a workflow belongs to now."""
    problems = []
    for node_id, called in called_workflows(workflow):
        department = department_of(called)
        refusal = (
            None
            if department is None
            else call_refusal(workflow.id, workflow.definition.department, called, department)
        )
        if refusal is not None:
            problems.append(Problem(f"node '{node_id}'", refusal))
    return problems
