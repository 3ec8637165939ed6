"""An execution's SLA (`settings.sla`, or its department's): a durable timer set when it
starts; an execution still running when it fires has breached it.

The breach is told twice in the same step: the lifecycle event `workflow.sla_breached`
(the stats count it) and the CloudEvent `braidflow.sla.breached` on the tenant's event bus.
The timer is part of the execution's state like any other, so a restart loses none; the end
of the execution clears it, and a fired timer is no longer pending, so a breach is told once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from braidflow.engine import ids
from braidflow.engine.ids import SLA_TIMER
from braidflow.engine.messages import PublishEvent
from braidflow.engine.state import iso_time

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

SLA_BREACHED_TYPE = "braidflow.sla.breached"
"""The CloudEvent type of a breach, on the execution's tenant's event bus."""

SLA_BREACHED_EVENT = "workflow.sla_breached"
"""The lifecycle event of a breach."""


def arm(draft: Draft) -> None:
    """Set the SLA timer of an execution that begins, if its workflow has an SLA."""
    sla_ms = draft.workflow.definition.sla_ms
    if sla_ms is not None:
        draft.timers[SLA_TIMER] = draft.at + sla_ms


def breached(draft: Draft) -> None:
    """The SLA timer fired: the execution is still running (its end clears the timer)."""
    s = draft.state
    definition = draft.workflow.definition
    data = {
        "tenant": s.tenant,
        "workflow": s.workflow_id,
        "workflow_version": s.workflow_version,
        "department": definition.department,
        "execution_id": s.execution_id,
        "sla_ms": definition.sla_ms,
        "started_at": iso_time(s.started_at),
        "breached_at": iso_time(draft.at),
    }
    draft.emit_event(SLA_BREACHED_EVENT, data=data)
    draft.outgoing.append(
        PublishEvent(
            ids.sla_breached_id(s.execution_id),
            s.execution_id,
            s.workflow_id,
            "",
            draft.at,
            SLA_BREACHED_TYPE,
            data,
            s.execution_id,
            s.tenant,
        )
    )
