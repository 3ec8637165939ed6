"""What the live API reads and writes: `?wait=` durations, and Server-Sent Events as the
worker frames them and the CLI reads them back."""

from __future__ import annotations

import json

import pytest

from braidflow.client_stream import StreamEvent, event_line, parse_sse
from braidflow.connectors.api.errors import BadRequest
from braidflow.connectors.api.sse import KEEPALIVE, sse_frame
from braidflow.connectors.api.waiting import wait_query


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("1m", 60.0), ("60000ms", 60.0), ("0s", 0.0)],
)
def test_a_wait_is_a_duration_of_at_most_a_minute(given: str, seconds: float) -> None:
    assert wait_query({"wait": given}) == seconds


def test_no_wait_is_none() -> None:
    assert wait_query({}) is None


@pytest.mark.parametrize("given", ["forever", "", "30", "-1s", "1.5s", "30 s", "2m", "61s", "1h"])
def test_any_other_wait_is_refused_naming_wait(given: str) -> None:
    with pytest.raises(BadRequest) as refused:
        wait_query({"wait": given})
    assert refused.value.field == "wait"
    assert str(refused.value).startswith("wait: ")


def test_a_frame_is_id_event_and_data_then_a_blank_line() -> None:
    data = json.dumps({"id": "e1/a/1/node.started", "node_id": "a"})
    frame = sse_frame("e1/a/1/node.started", "node.started", data)
    assert frame == (
        b"id: e1/a/1/node.started\nevent: node.started\ndata: " + data.encode() + b"\n\n"
    )


def test_data_with_line_breaks_takes_a_data_field_per_line() -> None:
    assert sse_frame("1", "x", "a\nb") == b"id: 1\nevent: x\ndata: a\ndata: b\n\n"


def test_an_id_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        sse_frame("1\nevent: forged", "x", "{}")


def test_frames_read_back_as_the_events_they_carry_and_keepalives_are_skipped() -> None:
    started = {"node_id": "a", "attempt": 1, "error": None}
    text = (
        sse_frame("e1/a/1/node.started", "node.started", json.dumps(started))
        + KEEPALIVE
        + sse_frame("1", "x", "a\nb")
    ).decode()
    assert list(parse_sse(text.splitlines(keepends=True))) == [
        StreamEvent("e1/a/1/node.started", "node.started", started),
        StreamEvent("1", "x", "a\nb"),
    ]


def test_a_node_event_reads_as_a_line_and_the_end_as_none() -> None:
    failed = {
        "node_id": "charge",
        "attempt": 2,
        "error": {"type": "Declined", "message": "no funds", "node_id": "charge"},
    }
    line = event_line(StreamEvent("i", "node.failed", failed))
    assert line is not None and line.startswith("  charge  failed  attempt 2  ")
    assert "no funds" in line
    assert event_line(StreamEvent("i", "workflow.completed", {})) is None
    assert event_line(StreamEvent("i", "workflow.paused", {})) == "  (workflow.paused)"
