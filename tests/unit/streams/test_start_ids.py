"""The id of the execution an event starts: a UUID version 5 of (source, id, workflow)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from braidflow.streams.starts import execution_id_for

NAMESPACE = uuid.UUID("6f1c1d57-6a43-4b8e-9d0e-3f0b2f3c9a11")


@given(st.text(), st.text(), st.text(min_size=1))
def test_the_id_is_the_uuid5_of_source_id_and_workflow(
    source: str, event_id: str, workflow_id: str
) -> None:
    # Ids already handed out must not change: it is what dedupes an event read twice.
    expected = uuid.uuid5(NAMESPACE, f"{source}\n{event_id}\n{workflow_id}").hex
    assert execution_id_for({"source": source, "id": event_id}, workflow_id) == expected


def test_a_known_id_stays_the_same() -> None:
    event = {"source": "/crm", "id": "e-1"}
    assert execution_id_for(event, "onboard") == "1d812a89ef755b418b230253a492f6d9"
    assert execution_id_for(event, "onboard") != execution_id_for(event, "offboard")
