"""A record the orchestrator cannot process goes to the dead-letter topic, and the worker carries on."""

from __future__ import annotations

import time
import uuid

from suite_broker import SuiteBroker
from topic_records import TopicReader, produce
from workers import DEV_SPEED, WorkerProcess

from braidflow.engine import NodeCompleted
from braidflow.schemas import encode_transition
from braidflow.schemas.dead_letters import DeadLetter, decode_dead_letter

ECHO = """
id: dead-letters-echo
nodes:
  - {id: say, type: task, params: {handler: test.echo, input: {said: "${input.word}"}}}
  - {id: done, type: end, params: {output: {said: "${nodes.say.output.said}"}}}
edges:
  - {from: say, to: done}
"""
PARTITIONS = int(DEV_SPEED["BRAIDFLOW_PARTITIONS"])
WAIT_S = 30.0


def dead_letters(reader: TopicReader, key: bytes, count: int) -> list[DeadLetter]:
    def letters() -> list[DeadLetter]:
        decoded = [decode_dead_letter(r.value) for r in reader.records if r.value is not None]
        return [d for d in decoded if isinstance(d, DeadLetter) and d.key == key]

    reader.until(lambda _: len(letters()) >= count, WAIT_S)
    return letters()


def test_poison_records_go_to_the_dead_letter_topic_and_the_partitions_move_on(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    topics = f"{shared_worker.prefix}.transitions", f"{shared_worker.prefix}.dead-letters"
    transitions, dead_letter_topic = topics
    assert shared_worker.api.deploy(ECHO).status == 201
    before = int(time.time() * 1000)
    # One on every partition, so whichever partition the next execution lands on has one.
    for partition in range(PARTITIONS):
        produce(broker, transitions, b"x", b"not avro", partition=partition)
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    orphan = NodeCompleted(f"{ghost}:work:1/completed", ghost, before, "work", 1, {"ok": True})
    produce(broker, transitions, ghost.encode(), encode_transition(orphan))

    with TopicReader(broker, dead_letter_topic) as reader:
        undecodable = dead_letters(reader, b"x", PARTITIONS)
        [unknown] = dead_letters(reader, ghost.encode(), 1)

    assert sorted(d.partition for d in undecodable) == list(range(PARTITIONS))
    for letter in undecodable:
        assert (letter.topic, letter.value) == (transitions, b"not avro")
        assert "undecodable" in letter.reason, letter
        assert letter.at >= before
    assert unknown.topic == transitions
    assert unknown.value == encode_transition(orphan)
    assert "unknown execution" in unknown.reason and ghost in unknown.reason

    execution_id = shared_worker.api.start("dead-letters-echo", {"word": "still here"})
    execution = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"said": "still here"}
