"""`braidflow audit` (braidflow/client_audit.py): the audit log, one record a line."""

from __future__ import annotations

from click.testing import CliRunner

from braidflow.cli import main
from braidflow.client_audit import audit_line


def test_a_record_is_one_line_when_who_what_and_detail() -> None:
    line = audit_line(
        {
            "at": "2026-12-05T22:00:00.000Z",
            "action": "cancel",
            "principal": "ana",
            "tenant": "acme",
            "target": {"execution": "e1"},
            "detail": {"reason": "a duplicate\norder", "by": "ana"},
        }
    )
    assert line == (
        "2026-12-05T22:00:00.000Z  cancel           ana@acme  execution=e1"
        "  reason=a duplicate order by=ana"
    )
    assert audit_line({"action": "deploy"}) == "?  deploy           ?@?  -"


def test_a_bad_time_is_refused_naming_the_option() -> None:
    result = CliRunner().invoke(main, ["audit", "--from", "yesterday", "--api", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--from" in result.output and "yesterday" in result.output
