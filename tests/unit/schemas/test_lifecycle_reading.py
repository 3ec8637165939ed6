"""A lifecycle event read in place reads as fastavro reads it: the same event from any bytes
the current schema writes, and a CodecError from any bytes fastavro cannot read; read without
its data, the same event but for the data; its outline, the same event but for its ids and
data."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import partial

import pytest
from avro_history import written_with
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycle_event_values import EVENTS

from braidflow.engine import LifecycleEvent
from braidflow.schemas import (
    CodecError,
    decode_event,
    decode_event_outline,
    encode_event,
    event_heading,
)
from braidflow.schemas.codec import _lifecycle_events
from braidflow.schemas.lifecycle_reading import LifecycleOutline
from braidflow.schemas.records import LIFECYCLE_EVENT
from tests.unit.damaged_bytes import assert_read_as_fastavro, damage, outcome


def fastavro_read(data: bytes) -> LifecycleEvent | CodecError:
    return outcome(_lifecycle_events.decode, data)


def read(data: bytes) -> LifecycleEvent | CodecError:
    return outcome(decode_event, data)


def as_outline(event: LifecycleEvent) -> LifecycleOutline:
    # Not astuple: it would turn the error, a NodeError, into a tuple too.
    return LifecycleOutline(*(getattr(event, name) for name in LifecycleOutline._fields))


def read_outline(data: bytes) -> LifecycleOutline | CodecError:
    return outcome(decode_event_outline, data)


def test_the_outline_is_the_events_fields_but_its_ids_and_data_in_their_order() -> None:
    names = [f.name for f in fields(LifecycleEvent)]
    assert list(LifecycleOutline._fields) == [
        n for n in names if n not in {"id", "execution_id", "data"}
    ]
    event = LifecycleEvent("i", "t", "e", "w", 1, 5)
    assert LifecycleOutline("t", "w", 1, 5) == as_outline(event)


@settings(max_examples=400)
@given(EVENTS)
def test_an_event_reads_as_fastavro_reads_it(event: LifecycleEvent) -> None:
    data = encode_event(event)
    assert decode_event(data) == fastavro_read(data) == event
    assert decode_event(data, with_data=False) == replace(event, data=None)
    assert decode_event_outline(data) == as_outline(event)


@settings(max_examples=400)
@given(EVENTS, st.data())
def test_damaged_bytes_fail_where_fastavro_fails(
    event: LifecycleEvent, draw: st.DataObject
) -> None:
    damaged = damage(encode_event(event), 10, draw)
    expected, found = fastavro_read(damaged), read(damaged)
    # The outline reads as the event without its data does, to the same error, but that it
    # passes over the ids unread: there, text that is not UTF-8 may go unnoticed.
    without_data, outline = (
        outcome(partial(decode_event, with_data=False), damaged),
        read_outline(damaged),
    )
    if not isinstance(without_data, CodecError):
        assert outline == as_outline(without_data)
    elif "UnicodeDecodeError" not in str(without_data):
        assert isinstance(outline, CodecError) and str(outline) == str(without_data)
    assert_read_as_fastavro(expected, found)
    if not isinstance(found, CodecError):
        # Without its data, what reads whole reads the same but for the data.
        assert decode_event(damaged, with_data=False) == replace(expected, data=None)


@settings(max_examples=200)
@given(EVENTS)
def test_an_events_id_and_type_are_read_off_its_first_fields(event: LifecycleEvent) -> None:
    assert event_heading(encode_event(event)) == (event.id, event.type)


@settings(max_examples=200)
@given(EVENTS, st.data())
def test_damaged_bytes_give_the_id_and_type_they_read_as_or_none(
    event: LifecycleEvent, draw: st.DataObject
) -> None:
    damaged = damage(encode_event(event), 10, draw)
    heading, found = event_heading(damaged), read(damaged)
    if not isinstance(found, CodecError):
        assert heading == (found.id, found.type)


def test_a_negative_union_branch_is_refused() -> None:
    # Found by CI's hypothesis run: a union's index byte flipped to 1 (zigzag -1), which
    # fastavro reads as Python's index from the end. The Avro specification has no branch -1.
    event = LifecycleEvent("i", "t", "e", "w", 1, 5, node_id=None)
    plain, named = encode_event(event), encode_event(replace(event, node_id=""))
    union = next(at for at, (a, b) in enumerate(zip(plain, named, strict=False)) if a != b)
    damaged = bytearray(plain)
    damaged[union] = 1
    found = read(bytes(damaged))
    assert isinstance(found, CodecError) and str(found).startswith("union branch -1"), found


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x02\xff", id="a string of invalid UTF-8"),
        pytest.param(b"\x01", id="a string of negative length"),
        pytest.param(b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", id="a long too long"),
    ],
)
def test_malformed_bodies_are_codec_errors(body: bytes) -> None:
    with pytest.raises(CodecError):
        decode_event(_lifecycle_events.header + body)


def test_an_event_of_an_older_schema_reads_without_its_data_too() -> None:
    event = LifecycleEvent("e", "node.completed", "ex", "w", 1, 5, "a", 1, {"out": 1})
    older = written_with("LifecycleEvent", 2, LIFECYCLE_EVENT.to_avro(event))
    assert decode_event(older) == event
    assert decode_event(older, with_data=False) == replace(event, data=None)
    assert decode_event_outline(older) == as_outline(event)
    # Its readers that only want its id and type find them in its headers.
    assert event_heading(older) is None


def test_an_event_of_the_current_schema_is_read_by_hand_told_by_its_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = LifecycleEvent("e", "node.completed", "ex", "w", 1, 5, "a", 1, {"out": 1})
    data = encode_event(event)

    def fastavro(data: bytes) -> LifecycleEvent:
        raise AssertionError("read through fastavro")

    monkeypatch.setattr(_lifecycle_events, "decode", fastavro)
    assert decode_event(data) == event
    assert decode_event_outline(data) == as_outline(event)


@pytest.mark.parametrize("data", [b"", b"\xc3\x01", b"\xc3\x01" + bytes(8), b"{}"])
def test_bytes_of_no_known_schema_are_codec_errors(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_event(data)
    with pytest.raises(CodecError):
        decode_event_outline(data)
    assert event_heading(data) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"\x02a", b"\x02\xff\x02a", b"\x01", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"],
)
def test_a_body_without_two_strings_first_has_no_heading(body: bytes) -> None:
    assert event_heading(_lifecycle_events.header + body) is None


def test_an_outline_passes_over_ids_and_data_it_never_decodes() -> None:
    event = LifecycleEvent("i" * 40, "node.completed", "e" * 36, "w", 1, 5, "a", 1, {"o": "d"})
    data = bytearray(encode_event(event))
    for text in (b"i" * 40, b"e" * 36, b'{"o":"d"}'):
        at = data.index(text)
        data[at] = 0xFF
    with pytest.raises(CodecError):
        decode_event(bytes(data), with_data=False)
    assert decode_event_outline(bytes(data)) == as_outline(event)
