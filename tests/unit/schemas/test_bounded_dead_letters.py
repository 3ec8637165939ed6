"""A dead letter fits a record whatever it is about: an oversized payload is kept as its head,
with the size and digest of the whole, and the letter says so."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from braidflow.client_cli import dead_letter_line
from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.engine import DeadLetterNode, NodeError
from braidflow.schemas.dead_letters import (
    HEAD_BYTES,
    Cut,
    DeadLetter,
    decode_dead_letter,
    encode_node_letter,
)

NOW = 1_700_000_000_000
# The record of the issue: a start of 990 KB, whose base64 letter was 1,320,669 bytes.
BIG_START = b"\x02" + b"x" * 990_000


def too_large_start(value: bytes = BIG_START, key: bytes = b"ca0767") -> DeadLetter:
    return DeadLetter("bf.transitions", 2, 17, key, value, "StateTooLarge", NOW)


def test_a_letter_for_a_record_too_large_keeps_its_head_size_and_digest() -> None:
    encoded = too_large_start().encode()
    assert len(encoded) < 3 * HEAD_BYTES
    letter = decode_dead_letter(encoded)
    assert isinstance(letter, DeadLetter)
    assert letter.value == BIG_START[:HEAD_BYTES]
    assert letter.key == b"ca0767"
    assert letter.truncated == {"value": Cut(len(BIG_START), hashlib.sha256(BIG_START).hexdigest())}
    assert json.loads(encoded)["truncated"]["value"]["size"] == 990_001


def test_a_small_record_is_kept_whole_and_says_nothing_of_cuts() -> None:
    letter = too_large_start(b"\x00not avro")
    encoded = letter.encode()
    assert "truncated" not in json.loads(encoded)
    assert decode_dead_letter(encoded) == letter


def test_a_huge_key_and_reason_are_bounded_too() -> None:
    key = b"k" * 500_000
    letter = DeadLetter("events.x", 0, 1, key, BIG_START, "r" * 2_000_000, NOW)
    encoded = letter.encode()
    assert len(encoded) < 4 * HEAD_BYTES + 16 * 1024
    read = decode_dead_letter(encoded)
    assert isinstance(read, DeadLetter)
    assert set(read.truncated) == {"key", "value"}
    assert read.truncated["key"].size == 500_000


def test_a_letter_read_back_and_written_again_keeps_what_was_cut() -> None:
    once = decode_dead_letter(too_large_start().encode())
    assert isinstance(once, DeadLetter)
    again = decode_dead_letter(once.encode())
    assert again == once


def test_a_node_letter_with_a_huge_input_keeps_its_head() -> None:
    big = {"blob": "y" * 1_000_000}
    letter = DeadLetterNode(
        "e1/a/dead", "e1", "wf", 1, "a", NOW, big, (NodeError("Boom", "no", "a"),),
        {"input": big, "handler": "h"},
    )  # fmt: skip
    encoded = encode_node_letter(letter)
    assert len(encoded) < 6 * HEAD_BYTES
    read = decode_dead_letter(encoded)
    assert isinstance(read, DeadLetterNode)
    text = json.dumps(big, separators=(",", ":")).encode()
    assert read.input["truncated"] is True
    assert read.input["size"] == len(text)
    assert read.input["sha256"] == hashlib.sha256(text).hexdigest()
    assert text.decode().startswith(read.input["head"])
    assert read.context["input"]["truncated"] is True
    assert read.context["handler"] == "h"


def test_the_index_and_the_cli_list_a_cut_letter_naming_what_was_cut(tmp_path: Path) -> None:
    index = DeadLetterIndex(tmp_path / "dl.sqlite")
    try:
        index.apply_many([(0, 0, too_large_start().encode())])
        [listed] = index.list()
        assert listed["truncated"]["value"]["size"] == len(BIG_START)
        assert base64.b64decode(listed["value"]) == BIG_START[:HEAD_BYTES]
        assert dead_letter_line(listed).endswith("StateTooLarge  (kept the head of: value)")
    finally:
        index.close()
