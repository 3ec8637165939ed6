"""The body of a lifecycle event in the current schema, written without fastavro.

Every step emits lifecycle events (a parked execution's start two: `workflow.started` and its
delay's `node.started`), and fastavro's `schemaless_writer` took 30 - 40 µs for one, about a
tenth of a parked start's worker CPU, most of it finding its way through the schema. Written
here field by field in the order of `braidflow.LifecycleEvent`, the mirror of
`lifecycle_reading`; a test holds it to fastavro's bytes for any event.
"""

from __future__ import annotations

from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas.records import _json

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_NULL, _PRESENT = b"\x00", b"\x02"
# Other longs written lately, mostly timestamps: a step writes its time into its state, its
# node runs and its events. Forgotten, all at once, past `_RECENT_MAX`.
_RECENT: dict[int, bytes] = {}
_RECENT_MAX = 4096


def avro_long(n: int) -> bytes:
    """Avro's int and long: zigzag, then 7 bits a byte, lowest first."""
    known = _SMALL.get(n)
    if known is not None:
        return known
    known = _RECENT.get(n)
    if known is not None:
        return known
    written = _written_long(n)
    if len(_RECENT) >= _RECENT_MAX:
        _RECENT.clear()
    _RECENT[n] = written
    return written


def _written_long(n: int) -> bytes:
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# The one-byte varints (-64 .. 63) and the two-byte ones up from 0 (.. 8191): counts, sizes of
# strings, attempts. About half a MiB.
_SMALL = {n: _written_long(n) for n in range(-64, 8192)}


def _string(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError("must be string")
    data = text.encode()
    return avro_long(len(data)) + data


def _optional_string(text: str | None) -> bytes:
    return _NULL if text is None else _PRESENT + _string(text)


def _optional_long(n: int | None) -> bytes:
    return _NULL if n is None else _PRESENT + avro_long(n)


def write_lifecycle_event(event: LifecycleEvent) -> bytes:
    """The Avro body of `event` (no framing header), as fastavro writes it.

    TypeError, ValueError or OverflowError when a field does not fit the schema.
    """
    error = event.error
    if error is None:
        error_bytes = _NULL
    else:
        error_bytes = b"".join(
            (
                _PRESENT,
                _string(error.type),
                _string(error.message),
                _optional_string(error.node_id),
            )
        )
    return b"".join(
        (
            _string(event.id),
            _string(event.type),
            _string(event.execution_id),
            _string(event.workflow_id),
            avro_long(event.workflow_version),
            avro_long(event.at),
            _optional_string(event.node_id),
            _optional_long(event.attempt),
            _optional_string(_json(event.data)),
            error_bytes,
            _string(event.tenant),
            _optional_long(event.started_at),
        )
    )
