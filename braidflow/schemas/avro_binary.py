"""Avro's binary encoding, value by value: the pieces every hand-written codec shares.

The records a step writes and reads most (lifecycle events, task requests, the transitions a
fan-out and a chain carry, the stored execution) are written and read field by field for
their current schema, byte for byte fastavro's: fastavro spent most of its time finding its
way through the schemas (docs/performance-history.md). Each codec's module holds its record's
field order; what an Avro long, string or `["null", X]` union is lives here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from braidflow.schemas.framing import CodecError

T = TypeVar("T")

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
NULL, PRESENT = b"\x00", b"\x02"
"""The branch of a `["null", X]` union: null, or an X that follows."""

# A long is at most ten bytes of seven bits.
_MAX_SHIFT = 7 * 10
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
    if not LONG_MIN <= n <= LONG_MAX:
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


def write_string(text: str) -> bytes:
    """An Avro string: its UTF-8 length, then its bytes."""
    if not isinstance(text, str):
        raise TypeError("must be string")
    data = text.encode()
    return avro_long(len(data)) + data


# Strings every record of a workflow repeats (event types, workflow, node and tenant ids),
# written. Forgotten, all at once, past `_NAMES_MAX`.
_NAMES: dict[str, bytes] = {}
_NAMES_MAX = 1024


def write_name(text: str) -> bytes:
    """`write_string` of a string that recurs from record to record (a type, a workflow's,
    node's or tenant's id): written once, then looked up."""
    known = _NAMES.get(text)
    if known is not None:
        return known
    written = write_string(text)
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    _NAMES[text] = written
    return written


def write_optional_string(text: str | None) -> bytes:
    """A `["null", "string"]` union."""
    return NULL if text is None else PRESENT + write_string(text)


def write_optional_long(n: int | None) -> bytes:
    """A `["null", "long"]` union."""
    return NULL if n is None else PRESENT + avro_long(n)


def write_optional_number(n: object, low: int, high: int) -> bytes:
    """A `["null", "int"]` or `["null", "long"]` union of a number in [low, high]."""
    # A union's branch is chosen by type, as fastavro does: an int in the range, never a bool.
    # `n` is an object so that compiled, a bool is not converted to an int on the way in.
    if n is None:
        return NULL
    if type(n) is not int or not low <= n <= high:
        raise ValueError(f"{n!r} does not fit a union of null and a number")
    return PRESENT + avro_long(n)


def read_long(data: bytes, at: int) -> tuple[int, int]:
    """The zigzag varint at `at`, and where the next value begins."""
    byte = data[at]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), at + 1
    value = byte & 0x7F
    shift = 7
    at += 1
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift == 63:
                # A tenth byte's bits past the 64th are dropped, as fastavro's C reader does.
                value &= 0xFFFF_FFFF_FFFF_FFFF
            return (value >> 1) ^ -(value & 1), at
        shift += 7
        if shift >= _MAX_SHIFT:
            raise CodecError("an Avro long of more than ten bytes")


def read_string(data: bytes, at: int) -> tuple[str, int]:
    """The string at `at`, and where the next value begins."""
    size = data[at]
    if size < 0x80 and not size & 1:
        # A length of one byte and not negative, as nearly every string's is: read in place.
        at += 1
        end = at + (size >> 1)
    else:
        size, at = read_long(data, at)
        end = at + size
        if size < 0:
            raise CodecError(f"an Avro string of negative length {size}")
    if end > len(data):
        raise EOFError
    return data[at:end].decode(), end


def read_present(data: bytes, at: int) -> tuple[bool, int]:
    """Whether the `["null", X]` union at `at` holds an X, and where that X begins."""
    branch = data[at]
    if branch == 2:
        return True, at + 1
    if branch == 0:
        return False, at + 1
    branch, at = read_long(data, at)
    if branch in (0, 1):
        return branch == 1, at
    raise CodecError(f"union branch {branch} of a [null, X] union")


def read_optional_string(data: bytes, at: int) -> tuple[str | None, int]:
    """The `["null", "string"]` union at `at`, and where the next value begins."""
    # `read_present`'s two usual bytes first: these are most of a state's fields.
    branch = data[at]
    if branch == 0:
        return None, at + 1
    if branch == 2:
        return read_string(data, at + 1)
    present, at = read_present(data, at)
    if present:
        return read_string(data, at)
    return None, at


def read_optional_long(data: bytes, at: int) -> tuple[int | None, int]:
    """The `["null", "long"]` union at `at`, and where the next value begins."""
    branch = data[at]
    if branch == 0:
        return None, at + 1
    if branch == 2:
        return read_long(data, at + 1)
    present, at = read_present(data, at)
    if present:
        return read_long(data, at)
    return None, at


def read_whole(read: Callable[[bytes, int], tuple[T, int]], data: bytes, at: int, name: str) -> T:
    """`read`'s value of the record `name` whose body begins at `at` and ends with `data`;
    CodecError, never another exception, if the bytes hold no such record, or more than one."""
    try:
        value, at = read(data, at)
    except CodecError:
        raise
    except (EOFError, IndexError) as exc:
        raise CodecError(f"truncated {name}: {len(data)} bytes") from exc
    except Exception as exc:
        # Whatever the bytes make the reader raise, the record is poison, not a crash.
        raise CodecError(f"cannot decode {name}: {type(exc).__name__}: {exc}") from exc
    if at != len(data):
        raise CodecError(f"{len(data) - at} bytes left over after a {name}")
    return value
