"""How a tenant's workflows are linked, derived from their definitions alone: a workflow
calls another (a `subworkflow` node), or publishes an event type (a `publish` node) that
another's event trigger or `wait_event` node takes. The dashboard's department map. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from braidflow.topology.model import Definition, EventTrigger

_TEMPLATE = "${"


@dataclass(frozen=True, slots=True)
class Link:
    """`source` reaches `target`: `kind` "calls" (a sub-workflow) or "event" (`event_type`
    published by the source, started or resumed in the target)."""

    source: str
    target: str
    kind: str
    event_type: str | None = None

    @property
    def label(self) -> str:
        return "calls" if self.event_type is None else self.event_type


def _published(definition: Definition) -> list[str]:
    """The event types a workflow publishes, as written (a templated type matches nothing
    that can be known before it runs)."""
    found = []
    for node in definition.nodes:
        kind = node.params.get("type")
        if node.type == "publish" and isinstance(kind, str) and _TEMPLATE not in kind:
            found.append(kind)
    return found


def _takes(definition: Definition, event_type: str) -> bool:
    """Whether `definition` is started (an event trigger's glob) or resumed (a `wait_event`
    node's exact type) by an event of `event_type`."""
    for trigger in definition.triggers:
        if isinstance(trigger, EventTrigger) and any(
            fnmatch.fnmatchcase(event_type, glob) for glob in trigger.types
        ):
            return True
    return any(
        n.type == "wait_event" and n.params.get("type") == event_type for n in definition.nodes
    )


def links(definitions: Iterable[Definition]) -> list[Link]:
    """Every link between `definitions`, in file order of the sources; a call or an event
    that names a workflow not among them is left out."""
    known = {d.id: d for d in definitions}
    found: list[Link] = []
    for definition in known.values():
        for node in definition.nodes:
            called = node.params.get("workflow")
            if node.type == "subworkflow" and called in known:
                found.append(Link(definition.id, str(called), "calls"))
        for event_type in dict.fromkeys(_published(definition)):
            for other in known.values():
                if _takes(other, event_type):
                    found.append(Link(definition.id, other.id, "event", event_type))
    return list(dict.fromkeys(found))
