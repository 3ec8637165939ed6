"""How `braidflow versions` and `braidflow diff` print what the API answers (pure, plain dicts)."""

from __future__ import annotations

from braidflow.client_workflows import diff_lines, version_line


def test_a_version_line_says_when_and_who_and_a_rollback_what_it_restores() -> None:
    deployed = {
        "version": 2,
        "deployed_at": "2026-12-05T18:00:00.000Z",
        "deployed_by": "ana",
        "restores": None,
        "rolled_back_from": None,
    }
    assert version_line(deployed) == "v2  2026-12-05T18:00:00.000Z  by ana"
    rolled = {**deployed, "version": 3, "restores": 1, "rolled_back_from": 2}
    assert version_line(rolled).endswith("by ana  rollback to v1 from v2")


def test_a_version_deployed_before_who_was_kept_says_so() -> None:
    line = version_line({"version": 1, "deployed_at": "t", "deployed_by": None})
    assert line == "v1  t  by (not recorded)"


def test_a_diff_prints_the_nodes_by_kind_then_the_unified_diff() -> None:
    answer = {
        "from": 1,
        "to": 2,
        "diff": "--- w@1\n+++ w@2\n@@ -1 +1 @@\n-a\n+b\n",
        "nodes": {"added": ["mail", "sms"], "removed": [], "changed": ["ship"]},
    }
    assert diff_lines(answer) == [
        "added: mail, sms",
        "changed: ship",
        "--- w@1",
        "+++ w@2",
        "@@ -1 +1 @@",
        "-a",
        "+b",
    ]


def test_a_diff_of_equal_texts_says_they_are_the_same() -> None:
    answer = {"from": 1, "to": 3, "diff": "", "nodes": {"added": [], "removed": [], "changed": []}}
    assert diff_lines(answer) == ["versions 1 and 3 have the same text"]
