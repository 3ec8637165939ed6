"""Deployed departments, as read from the workflows topic (braidflow.streams.catalog).

A department deploy is a record of its own key space, `department:<name>@proposal-<uuid>`,
JSON with `kind: department`, the name, the text, who deployed it and when. Workers that
predate departments find no workflow id in it and skip it. Versions count up from 1 per
department in the order of the topic; the text the latest version already has makes no new
one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from braidflow.secrets import SecretsAllowed, credentials_allowed
from braidflow.topology.departments import Department

RECORD_KIND = "department"


@dataclass(frozen=True)
class DepartmentVersion:
    """One version of one department, as deployed."""

    name: str
    version: int
    text: str
    deployed_at: int
    deployed_by: str | None
    department: Department = field(repr=False, compare=False)


def department_record(
    department: Department, text: str, now_ms: int, by: str | None, proposal: str
) -> tuple[bytes, dict[str, Any]]:
    """The key and value of the record that deploys `department`."""
    value = {
        "kind": RECORD_KIND,
        "department": department.name,
        "text": text,
        "deployed_at": now_ms,
        "deployed_by": by,
        "proposal": proposal,
    }
    return f"department:{department.name}@proposal-{proposal}".encode(), value


def is_department_record(record: Mapping[str, Any]) -> bool:
    return record.get("kind") == RECORD_KIND and isinstance(record.get("department"), str)


class Departments:
    """Every version of every department read so far."""

    def __init__(self) -> None:
        self._versions: dict[str, list[DepartmentVersion]] = {}
        # This worker's proposals, and the version each became (or already was) once read.
        self._placed: dict[str, DepartmentVersion | None] = {}
        self._allowed: dict[str | None, SecretsAllowed] = {}

    def read(self, record: Mapping[str, Any], department: Department | None) -> None:
        """Take one department record; `department` is its text loaded, None when it no
        longer loads (skipped, as the catalog skips such workflows)."""
        name = record["department"]
        text = record.get("text")
        if department is None or department.name != name or not isinstance(text, str):
            return
        latest = self.latest(name)
        if latest is None or latest.text != text:
            by = record.get("deployed_by")
            at = record.get("deployed_at")
            latest = DepartmentVersion(
                name,
                len(self._versions.get(name, ())) + 1,
                text,
                at if isinstance(at, int) else 0,
                by if isinstance(by, str) else None,
                department,
            )
            self._versions.setdefault(name, []).append(latest)
            self._allowed.clear()
        proposal = record.get("proposal")
        if isinstance(proposal, str) and proposal in self._placed:
            self._placed[proposal] = latest

    def expect(self, proposal: str) -> None:
        """Remember what `proposal`, about to be written, becomes when read back."""
        self._placed[proposal] = None

    def placed(self, proposal: str) -> DepartmentVersion | None:
        """The version an expected proposal became once read; forgotten once asked."""
        return self._placed.pop(proposal, None)

    def latest(self, name: str | None) -> DepartmentVersion | None:
        found = self._versions.get(name) if name is not None else None
        return found[-1] if found else None

    def definition(self, name: str | None) -> Department | None:
        """The latest definition of department `name`; None when none was deployed."""
        latest = self.latest(name)
        return None if latest is None else latest.department

    def versions(self, name: str) -> list[DepartmentVersion]:
        return list(self._versions.get(name, ()))

    def all_latest(self) -> list[DepartmentVersion]:
        return [found[-1] for _, found in sorted(self._versions.items())]

    def secrets_allowed(self, department: str | None) -> SecretsAllowed:
        """The secrets a workflow of `department` may use, by every department's current
        `credentials` (asked for every task: kept until the next department version)."""
        allowed = self._allowed.get(department)
        if allowed is None:
            lists = {
                name: found[-1].department.credentials for name, found in self._versions.items()
            }
            allowed = self._allowed[department] = credentials_allowed(department, lists)
        return allowed
