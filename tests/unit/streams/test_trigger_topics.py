"""The events topics dev mode creates up front: those the event triggers name outright."""

from __future__ import annotations

import json

from braidflow.config import Settings
from braidflow.streams.topics import trigger_topics
from braidflow.topology import load_workflow


def triggered_by(workflow_id: str, *types: str) -> str:
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [
                *([{"event": {"types": list(types)}}] if types else []),
                {"webhook": {"name": f"{workflow_id}-hook"}},
            ],
            "nodes": [{"id": "done", "type": "end"}],
            "edges": [],
        }
    )


def test_the_topics_of_types_whose_first_segment_is_plain() -> None:
    settings = Settings(partitions=3, events_prefix="domain.")
    workflows = [
        load_workflow(triggered_by("a", "ticket.opened", "ticket.*", "*.created")),
        load_workflow(triggered_by("b", "order.paid", "inv?ice.sent", "braidflow.workflow.failed")),
        load_workflow(triggered_by("c")),
    ]
    topics = trigger_topics(settings, workflows)
    assert [t.topic for t in topics] == ["domain.order", "domain.ticket"]
    assert {t.num_partitions for t in topics} == {3}
