"""A lifecycle event written without fastavro: the very bytes fastavro writes, and a CodecError
where fastavro's writer fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycle_event_values import EVENTS

from braidflow.engine import LifecycleEvent
from braidflow.schemas import CodecError, decode_event, encode_event
from braidflow.schemas.codec import _lifecycle_events


@settings(max_examples=400)
@given(EVENTS)
def test_an_event_is_written_as_fastavro_writes_it(event: LifecycleEvent) -> None:
    assert encode_event(event) == _lifecycle_events.encode(event)
    assert decode_event(encode_event(event)) == _lifecycle_events.decode(encode_event(event))


@given(st.sampled_from([-(2**63) - 1, 2**63]))
def test_a_number_past_a_long_fails_as_with_fastavro(at: int) -> None:
    event = LifecycleEvent("e1/x", "node.started", "e1", "wf", 1, at)
    with pytest.raises(CodecError):
        _lifecycle_events.encode(event)
    with pytest.raises(CodecError):
        encode_event(event)


def test_a_field_of_the_wrong_type_fails_as_with_fastavro() -> None:
    event = LifecycleEvent("e1/x", "node.started", "e1", "wf", 1, 0, node_id=7)  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        _lifecycle_events.encode(event)
    with pytest.raises(CodecError):
        encode_event(event)
