"""Dead letters of both kinds as JSON, and as the dead-letter index lists them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.engine import DeadLetterNode, NodeError
from braidflow.schemas.dead_letters import (
    DeadLetter,
    RedriveMark,
    decode_dead_letter,
    encode_node_letter,
)

NOW = 1_700_000_000_000
DEAD_LETTERS = TopicPartition("bf.dead-letters", 0)

POISON = DeadLetter(
    topic="bf.transitions",
    partition=3,
    offset=41,
    key=b"e1",
    value=b"\x00not avro",
    reason="undecodable transition",
    at=NOW,
)
FAILED_NODE = DeadLetterNode(
    id="e7/charge/dead",
    execution_id="e7",
    workflow_id="refund",
    workflow_version=2,
    node_id="charge",
    at=NOW + 1_000,
    input={"amount": 5},
    errors=(
        NodeError("Timeout", "no answer in 30 s", "charge"),
        NodeError("HTTPError", "503", "charge"),
    ),
    context={"idempotency_key": "e7:charge:2", "handler": "payments.charge"},
)
# What a worker wrote before dead letters had a kind.
OLD_RECORD = (
    b'{"topic":"bf.tasks","partition":0,"offset":9,"key":null,"value":"eA==",'
    b'"reason":"undecodable task","at":1699999999000}'
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[DeadLetterIndex]:
    index = DeadLetterIndex(tmp_path / "dead-letters.sqlite")
    yield index
    index.close()


def node_letter(n: int, workflow_id: str = "refund", at: int = NOW) -> DeadLetterNode:
    return DeadLetterNode(
        id=f"n{n}",
        execution_id=f"e{n}",
        workflow_id=workflow_id,
        workflow_version=1,
        node_id="charge",
        at=at,
        input=None,
        errors=(NodeError("Boom", "it broke"),),
        context={},
    )


def encoded(letter: DeadLetter | DeadLetterNode) -> bytes:
    return letter.encode() if isinstance(letter, DeadLetter) else encode_node_letter(letter)


def ids(letters: list[dict[str, object]]) -> list[object]:
    return [letter["id"] for letter in letters]


def test_both_kinds_are_json_objects_that_name_their_kind() -> None:
    assert json.loads(POISON.encode())["kind"] == "record"
    node = json.loads(encode_node_letter(FAILED_NODE))
    assert node["kind"] == "node"
    assert node["errors"][1] == {"type": "HTTPError", "message": "503", "node_id": "charge"}


@pytest.mark.parametrize("letter", [POISON, FAILED_NODE], ids=["record", "node"])
def test_each_kind_decodes_back_to_itself(letter: DeadLetter | DeadLetterNode) -> None:
    assert decode_dead_letter(encoded(letter)) == letter


def test_errors_written_before_they_named_their_node_decode_with_none() -> None:
    old = encode_node_letter(FAILED_NODE).replace(b',"node_id":"charge"}', b"}")
    letter = decode_dead_letter(old)
    assert isinstance(letter, DeadLetterNode)
    assert letter.errors == (
        NodeError("Timeout", "no answer in 30 s"),
        NodeError("HTTPError", "503"),
    )


def test_a_record_dead_letter_written_without_a_kind_still_decodes() -> None:
    expected = DeadLetter("bf.tasks", 0, 9, None, b"x", "undecodable task", NOW - 1_000)
    assert DeadLetter.decode(OLD_RECORD) == expected
    assert decode_dead_letter(OLD_RECORD) == expected


def test_the_record_decoder_refuses_a_node_dead_letter() -> None:
    with pytest.raises(ValueError, match="record"):
        DeadLetter.decode(encode_node_letter(FAILED_NODE))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"[1]",
        b'{"kind": "parcel"}',
        b'{"kind": "node", "id": "n1"}',
        encode_node_letter(FAILED_NODE).replace(b'"at":', b'"at":"soon","x":'),
        POISON.encode().replace(b'"key":"ZTE="', b'"key":"not base64!"'),
        POISON.encode().replace(b'"reason"', b'"extra":1,"reason"'),
    ],
    ids=[
        "not UTF-8",
        "not an object",
        "unknown kind",
        "fields missing",
        "wrong type",
        "bad base64",
        "unknown field",
    ],
)
def test_anything_else_is_refused_with_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_dead_letter(data)


def test_both_kinds_are_listed_with_their_fields(index: DeadLetterIndex) -> None:
    index.apply_many([(0, 0, POISON.encode()), (0, 1, encode_node_letter(FAILED_NODE))])
    assert index.list() == [
        {
            "id": "e7/charge/dead",
            "kind": "node",
            "at": "2023-11-14T22:13:21.000Z",
            "execution_id": "e7",
            "workflow_id": "refund",
            "workflow_version": 2,
            "node_id": "charge",
            "input": {"amount": 5},
            "errors": [
                {"type": "Timeout", "message": "no answer in 30 s"},
                {"type": "HTTPError", "message": "503"},
            ],
            "context": {"idempotency_key": "e7:charge:2", "handler": "payments.charge"},
            "redriven_at": None,
        },
        {
            "id": "bf.transitions:3:41",
            "kind": "record",
            "at": "2023-11-14T22:13:20.000Z",
            "topic": "bf.transitions",
            "partition": 3,
            "offset": 41,
            "key": "ZTE=",
            "value": "AG5vdCBhdnJv",
            "reason": "undecodable transition",
            "redriven_at": None,
        },
    ]


def test_an_old_record_dead_letter_is_listed_as_a_record(index: DeadLetterIndex) -> None:
    index.apply_many([(0, 0, OLD_RECORD)])
    [letter] = index.list()
    assert (letter["id"], letter["kind"], letter["key"], letter["value"]) == (
        "bf.tasks:0:9",
        "record",
        None,
        "eA==",
    )


def test_dead_letters_are_listed_newest_first_up_to_the_limit(index: DeadLetterIndex) -> None:
    index.apply_many(
        (0, n, encode_node_letter(node_letter(n, at=NOW + n * 1_000))) for n in range(5)
    )
    assert ids(index.list()) == ["n4", "n3", "n2", "n1", "n0"]
    assert ids(index.list(limit=2)) == ["n4", "n3"]


def test_dead_letters_are_filtered_by_kind_and_workflow(index: DeadLetterIndex) -> None:
    letters = [POISON, node_letter(1, at=NOW + 1), node_letter(2, "payout", at=NOW + 2)]
    index.apply_many((0, n, encoded(letter)) for n, letter in enumerate(letters))
    assert ids(index.list(kind="node")) == ["n2", "n1"]
    assert ids(index.list(kind="record")) == ["bf.transitions:3:41"]
    assert ids(index.list(workflow_id="refund")) == ["n1"]
    assert index.list(kind="record", workflow_id="refund") == []


@pytest.mark.parametrize(
    ("filters", "message"), [({"limit": 0}, "limit"), ({"kind": "parcel"}, "kind")]
)
def test_a_bad_filter_is_refused(
    index: DeadLetterIndex, filters: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        index.list(**filters)


def test_one_dead_letter_is_shown_by_its_id(index: DeadLetterIndex) -> None:
    index.apply_many([(0, 0, POISON.encode()), (0, 1, encode_node_letter(FAILED_NODE))])
    assert index.get("bf.transitions:3:41") == index.list(kind="record")[0]
    assert index.get("e7/charge/dead") == index.list(kind="node")[0]
    assert index.get("nothing") is None


def test_applying_the_same_dead_letters_twice_changes_nothing(index: DeadLetterIndex) -> None:
    records = [(0, 0, POISON.encode()), (0, 1, encode_node_letter(FAILED_NODE))]
    index.apply_many(records)
    first = index.list()
    index.apply_many(records)
    assert index.list() == first


def test_a_record_that_is_no_dead_letter_is_skipped_with_a_warning(
    index: DeadLetterIndex, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        index.apply_many([(0, 0, b"garbage"), (0, 1, POISON.encode())], {DEAD_LETTERS: 2})
    assert ids(index.list()) == ["bf.transitions:3:41"]
    assert index.positions() == {DEAD_LETTERS: 2}
    assert "partition 0 offset 0" in caplog.text


def test_a_redriven_dead_letter_stays_listed_with_the_latest_redrive(
    index: DeadLetterIndex,
) -> None:
    index.apply_many([(0, 0, encode_node_letter(FAILED_NODE))])
    assert index.mark_redriven("e7/charge/dead", NOW + 5_000)
    assert index.mark_redriven("e7/charge/dead", NOW + 9_000)
    assert index.mark_redriven("e7/charge/dead", NOW + 7_000)
    [letter] = index.list()
    assert letter["redriven_at"] == "2023-11-14T22:13:29.000Z"
    # Reading the dead letter again does not forget its redrive.
    index.apply_many([(0, 0, encode_node_letter(FAILED_NODE))])
    assert index.get("e7/charge/dead") == letter


def test_a_redrive_mark_read_from_the_topic_marks_its_dead_letter(index: DeadLetterIndex) -> None:
    # Written by whichever worker took the redrive; every index reads it.
    mark = RedriveMark("e7/charge/dead", NOW + 5_000, "ops")
    assert decode_dead_letter(mark.encode()) == mark
    index.apply_many(
        [(0, 0, encode_node_letter(FAILED_NODE)), (0, 1, mark.encode())], {DEAD_LETTERS: 2}
    )
    [letter] = index.list()
    assert letter["redriven_at"] == "2023-11-14T22:13:25.000Z"
    assert index.positions() == {DEAD_LETTERS: 2}
    # The mark of the worker that took the redrive, already applied, is kept as it is.
    index.apply_many([(0, 1, mark.encode())])
    assert index.list() == [letter]


def test_a_redrive_mark_is_no_dead_letter_and_names_one(index: DeadLetterIndex) -> None:
    index.apply_many([(0, 0, RedriveMark("nothing", NOW, "ops").encode())])
    assert index.list() == []
    with pytest.raises(ValueError, match="dead_letter_id"):
        decode_dead_letter(b'{"kind":"redrive","at":1,"by":"ops"}')


def test_an_unknown_dead_letter_cannot_be_marked_redriven(index: DeadLetterIndex) -> None:
    assert not index.mark_redriven("nothing", NOW)
    assert index.list() == []


def test_rows_and_positions_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dead-letters.sqlite"
    index = DeadLetterIndex(path)
    index.apply_many([(0, 6, encode_node_letter(FAILED_NODE))], {DEAD_LETTERS: 7})
    index.mark_redriven("e7/charge/dead", NOW + 5_000)
    index.close()
    reopened = DeadLetterIndex(path)
    assert reopened.positions() == {DEAD_LETTERS: 7}
    assert reopened.list()[0]["redriven_at"] == "2023-11-14T22:13:25.000Z"
    reopened.close()


def test_a_reset_forgets_dead_letters_and_positions(index: DeadLetterIndex) -> None:
    index.apply_many([(0, 0, POISON.encode())], {DEAD_LETTERS: 1})
    index.reset()
    assert index.list() == []
    assert index.positions() == {}
