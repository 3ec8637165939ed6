"""Version numbers of deployed workflows, decided by the order of the workflows topic. Pure.

The workflows topic has one partition, so every worker reads its records in the same
order. A deploy writes a *proposal* (a record with a `proposal` id and no number of its
own that counts); whoever reads it numbers it the same way: one more than the highest
version of that workflow read so far, or, when its text is the text of the latest live
version, that version (nothing new is made, as with a redeploy of the same text). The
deploying worker reads its own proposal back to learn the number. Two workers deploying
at the same instant therefore never share a number, and agree on every version's text.
Each proposal has a key of its own, so compaction of the topic keeps every one, in order:
a worker reading the topic later numbers it alike.

Records written before proposals existed (`{"id", "version", "text", ...}`, keyed
`<id>@<version>`) keep the number they carry. A proposal also carries the proposer's
guess as `version`, which only workers older than proposals read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Head:
    """The highest version of a workflow read so far, and its text."""

    version: int
    text: str


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a deployment record landed.

    `created` is False when a proposal repeated the latest live text: `version` is then
    that existing version. `replaced` is the version that was the highest before this one
    (what a rollback rolled back from); None for the first.
    """

    workflow_id: str
    version: int
    created: bool
    replaced: int | None = None


class VersionNumbers:
    """Numbers the deployment records of the workflows topic in the order they are read."""

    def __init__(self) -> None:
        self._heads: dict[str, Head] = {}
        # Removed workflows: their highest version at removal.
        self._removed: dict[str, int] = {}

    def read(self, record: Mapping[str, Any]) -> Placed | None:
        """Number one decoded record (removals included); None for a removal or a record
        without an id and text. Depends only on the records read before, never on whether
        a definition still loads, so every worker numbers alike."""
        workflow_id = record.get("id")
        if not isinstance(workflow_id, str):
            return None
        if record.get("removed"):
            version = record.get("version")
            if isinstance(version, int):
                self._removed[workflow_id] = version
            return None
        text = record.get("text")
        if not isinstance(text, str):
            return None
        head = self._heads.get(workflow_id)
        replaced = None if head is None else head.version
        if record.get("proposal") is None:
            version = record.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                return None
            if head is None or version >= head.version:
                self._heads[workflow_id] = Head(version, text)
            return Placed(workflow_id, version, True, replaced)
        if head is not None and self.live(workflow_id) and head.text == text:
            return Placed(workflow_id, head.version, False, replaced)
        version = 1 if head is None else head.version + 1
        self._heads[workflow_id] = Head(version, text)
        return Placed(workflow_id, version, True, replaced)

    def live(self, workflow_id: str) -> bool:
        """Whether the workflow has a version deployed after its last removal."""
        head = self._heads.get(workflow_id)
        return head is not None and head.version > self._removed.get(workflow_id, 0)

    def removed_at(self, workflow_id: str) -> int:
        """The highest version at the workflow's last removal; 0 if never removed."""
        return self._removed.get(workflow_id, 0)

    def head(self, workflow_id: str) -> int:
        """The highest version number given to the workflow so far; 0 for none."""
        head = self._heads.get(workflow_id)
        return 0 if head is None else head.version
