"""How each node kind runs: one module per kind, registered in `NODE_KINDS`.

The kinds' specs (params, templates, edges) are `braidflow.topology.kinds.KINDS`;
this table must cover exactly those, and refuses to load otherwise, so a kind
cannot be valid in a definition yet unknown to the engine. Work kinds of other
packages join both tables at start, through `add_work_kinds` (docs/custom-kinds.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from braidflow.engine.nodes.approval import Approval
from braidflow.engine.nodes.base import NodeKind
from braidflow.engine.nodes.classify import Classify
from braidflow.engine.nodes.code import Code
from braidflow.engine.nodes.decision import Decision
from braidflow.engine.nodes.delay import Delay
from braidflow.engine.nodes.email import Email
from braidflow.engine.nodes.end import End
from braidflow.engine.nodes.extract import Extract
from braidflow.engine.nodes.fetch_page import FetchPage
from braidflow.engine.nodes.foreach import Foreach
from braidflow.engine.nodes.http import Http
from braidflow.engine.nodes.join import Join
from braidflow.engine.nodes.llm import Llm
from braidflow.engine.nodes.loop import Loop
from braidflow.engine.nodes.parallel import Parallel
from braidflow.engine.nodes.publish import Publish
from braidflow.engine.nodes.subworkflow import Subworkflow
from braidflow.engine.nodes.summarize import Summarize
from braidflow.engine.nodes.task import Task
from braidflow.engine.nodes.transform import Transform
from braidflow.engine.nodes.wait_event import WaitEvent
from braidflow.engine.nodes.work import CustomWork
from braidflow.topology.kinds import KINDS, KindSpec, add_kinds

_BY_NAME: dict[str, type[NodeKind]] = {
    "approval": Approval,
    "classify": Classify,
    "code": Code,
    "decision": Decision,
    "delay": Delay,
    "email": Email,
    "end": End,
    "extract": Extract,
    "fetch_page": FetchPage,
    "foreach": Foreach,
    "http": Http,
    "join": Join,
    "llm": Llm,
    "loop": Loop,
    "parallel": Parallel,
    "publish": Publish,
    "subworkflow": Subworkflow,
    "summarize": Summarize,
    "task": Task,
    "transform": Transform,
    "wait_event": WaitEvent,
}
if set(_BY_NAME) != set(KINDS):
    raise ImportError(
        f"node kinds without an engine module: {sorted(set(KINDS) - set(_BY_NAME))};"
        f" engine modules without a spec: {sorted(set(_BY_NAME) - set(KINDS))}"
    )

_RUNNING: dict[str, NodeKind] = {name: kind(KINDS[name]) for name, kind in _BY_NAME.items()}
# The dict itself, read-only by its type: every step looks kinds up here, and a proxy's
# lookup costs a call more.
NODE_KINDS: Mapping[str, NodeKind] = _RUNNING
# The kinds that keep state of their own to drop when an execution ends.
FINISHING: tuple[NodeKind, ...] = tuple(
    kind
    for kind in NODE_KINDS.values()
    if type(kind).execution_finishing is not NodeKind.execution_finishing
)


def add_work_kinds(specs: Iterable[KindSpec]) -> None:
    """Register work kinds of other packages with the topology and here, all or none:
    ValueError naming a kind that is not of the `work` family or is registered already."""
    specs = tuple(specs)
    others = sorted(spec.name for spec in specs if spec.family != "work")
    if others:
        raise ValueError(f"only work kinds may be added: {', '.join(others)}")
    add_kinds(specs)
    _RUNNING.update((spec.name, CustomWork(spec)) for spec in specs)


__all__ = ["FINISHING", "NODE_KINDS", "NodeKind", "add_work_kinds"]
