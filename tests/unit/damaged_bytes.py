"""Damaged Avro bytes for the properties of the hand-written readers (lifecycle events,
transitions, the stored execution): each must fail where fastavro fails, and otherwise read
what fastavro reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import strategies as st

from braidflow.schemas import CodecError

T = TypeVar("T")


def outcome(read: Callable[[bytes], T], data: bytes) -> T | CodecError:
    """What `read` makes of `data`: its value, or the CodecError it raised."""
    try:
        return read(data)
    except CodecError as exc:
        return exc


def damage(data: bytes, header: int, draw: st.DataObject) -> bytes:
    """`data` cut short, extended, or with one byte after its `header` changed."""
    damaged = bytearray(data)
    cut = draw.draw(st.integers(header, len(data) - 1))
    damage = draw.draw(st.sampled_from(["truncate", "extend", "flip"]), label="damage")
    if damage == "truncate":
        return bytes(damaged[:cut])
    if damage == "extend":
        return data + draw.draw(st.binary(min_size=1, max_size=4))
    damaged[cut] = draw.draw(st.integers(0, 255).filter(lambda b: b != data[cut]))
    return bytes(damaged)


def assert_read_as_fastavro(expected: T | CodecError, found: T | CodecError) -> None:
    """`found` (the reader's) fails where `expected` (fastavro's) fails, else equals it."""
    if isinstance(expected, CodecError):
        assert isinstance(found, CodecError)
    elif isinstance(found, CodecError):
        # fastavro takes a negative union branch as Python's index from the end; the Avro
        # specification has none, and the reader refuses it. Nothing else may differ.
        assert str(found).startswith("union branch -"), found
    else:
        assert found == expected
