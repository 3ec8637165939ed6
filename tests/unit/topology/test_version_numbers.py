"""Versions are numbered by the order of the workflows topic, the same on every worker."""

from __future__ import annotations

from typing import Any

from braidflow.topology.version_numbers import Placed, VersionNumbers


def proposal(text: str, workflow_id: str = "w", guess: int = 1, **more: Any) -> dict[str, Any]:
    """A deploy's record: `guess` is the proposer's own count, which does not decide."""
    return {"id": workflow_id, "version": guess, "text": text, "proposal": text, **more}


def numbered(records: list[dict[str, Any]]) -> list[Placed | None]:
    numbers = VersionNumbers()
    return [numbers.read(record) for record in records]


def test_two_proposals_with_the_same_guess_get_consecutive_numbers_in_topic_order() -> None:
    # Two workers that both saw version 1 propose at the same instant: both guess 2.
    found = numbered([proposal("a"), proposal("b", guess=2), proposal("c", guess=2)])
    assert [(p.version, p.created) for p in found if p] == [(1, True), (2, True), (3, True)]


def test_every_reader_of_the_same_records_numbers_them_alike() -> None:
    records = [proposal(t, w, guess=1) for t in "abcdef" for w in ("x", "y")]
    assert numbered(records) == numbered(list(records))
    assert [p.version for p in numbered(records) if p and p.workflow_id == "x"] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_a_proposal_repeating_the_latest_text_makes_no_new_version() -> None:
    found = numbered([proposal("a"), proposal("b"), proposal("b")])
    assert found[2] == Placed("w", 2, False, 2)


def test_a_proposal_repeating_an_older_text_is_a_new_version() -> None:
    found = numbered([proposal("a"), proposal("b"), proposal("a", restores=1)])
    assert found[2] == Placed("w", 3, True, replaced=2)


def test_records_written_before_proposals_keep_their_numbers_and_proposals_follow() -> None:
    old = [{"id": "w", "version": v, "text": f"t{v}", "deployed_at": 0} for v in (1, 2, 3)]
    found = numbered([*old, proposal("t4", guess=2)])
    assert [p.version for p in found if p] == [1, 2, 3, 4]


def test_an_old_record_that_repeats_a_number_keeps_it_and_the_highest_text_counts() -> None:
    # The race of old: two records `w@2`; the later one is version 2, as before.
    old = [{"id": "w", "version": v, "text": t, "deployed_at": 0} for v, t in ((1, "a"), (2, "b"))]
    found = numbered([*old, {"id": "w", "version": 2, "text": "c"}, proposal("c")])
    assert found[3] == Placed("w", 2, False, 2)


def test_numbering_goes_on_after_a_removal_and_the_same_text_is_new_again() -> None:
    numbers = VersionNumbers()
    numbers.read(proposal("a"))
    assert numbers.read({"id": "w", "version": 1, "removed": True, "at": 0}) is None
    assert not numbers.live("w") and numbers.removed_at("w") == 1
    assert numbers.read(proposal("a")) == Placed("w", 2, True, 1)
    assert numbers.live("w")


def test_records_without_an_id_or_a_text_are_not_numbered() -> None:
    found = numbered([{"text": "a"}, {"id": "w"}, {"id": "w", "text": "a"}, proposal("b")])
    assert found[:3] == [None, None, None]
    assert found[3] == Placed("w", 1, True)
