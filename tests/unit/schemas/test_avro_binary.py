"""Avro's binary values as the hand-written codecs read and write them, held to fastavro."""

from __future__ import annotations

from io import BytesIO

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from braidflow.schemas.avro_binary import (
    LONG_MAX,
    LONG_MIN,
    avro_long,
    read_long,
    read_optional_string,
    read_string,
    read_whole,
    write_name,
    write_optional_string,
    write_string,
)
from braidflow.schemas.framing import CodecError


def _fastavro(schema: object, value: object) -> bytes:
    out = BytesIO()
    schemaless_writer(out, schema, value)
    return out.getvalue()


def test_a_name_is_written_as_a_string_each_time_and_past_the_names_kept() -> None:
    names = [f"node-{i}" for i in range(3_000)] + ["ünïcode", ""]
    for _ in range(2):
        assert [write_name(n) for n in names] == [_fastavro("string", n) for n in names]


@pytest.mark.parametrize("not_text", [7, b"node", None, ["node"]])
def test_a_name_that_is_not_text_is_refused_as_a_string_is(not_text: object) -> None:
    with pytest.raises(TypeError):
        write_name(not_text)  # type: ignore[arg-type]


@given(st.integers(LONG_MIN, LONG_MAX))
def test_a_long_is_written_and_read_as_fastavro(n: int) -> None:
    assert avro_long(n) == _fastavro("long", n)
    assert read_long(avro_long(n) + b"\x07", 0) == (n, len(avro_long(n)))


@given(st.text(), st.none() | st.text())
def test_strings_are_written_and_read_as_fastavro(text: str, optional: str | None) -> None:
    assert write_string(text) == _fastavro("string", text)
    assert read_string(write_string(text), 0) == (text, len(write_string(text)))
    written = write_optional_string(optional)
    assert written == _fastavro(["null", "string"], optional)
    assert read_optional_string(written, 0) == (optional, len(written))


@pytest.mark.parametrize("tenth", [0x02, 0x7E, 0x01, 0x7F])
def test_a_ten_byte_long_keeps_its_low_64_bits_as_fastavro_reads_it(tenth: int) -> None:
    data = b"\xff" * 9 + bytes([tenth])
    assert read_long(data, 0) == (schemaless_reader(BytesIO(data), "long", None), 10)


def test_a_long_of_more_than_ten_bytes_is_refused() -> None:
    with pytest.raises(CodecError, match="more than ten bytes"):
        read_long(b"\xff" * 10 + b"\x01", 0)


def test_a_whole_record_read_says_what_is_wrong_by_name() -> None:
    with pytest.raises(CodecError, match="truncated Thing: 1 bytes"):
        read_whole(read_string, b"\x08", 0, "Thing")
    with pytest.raises(CodecError, match="2 bytes left over after a Thing"):
        read_whole(read_string, b"\x02a..", 0, "Thing")
    with pytest.raises(CodecError, match="cannot decode Thing: UnicodeDecodeError"):
        read_whole(read_string, b"\x02\xff", 0, "Thing")
    assert read_whole(read_string, b"\x02a", 0, "Thing") == "a"
