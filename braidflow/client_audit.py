"""The client command `audit`: who changed or decided what, and when, from the REST API.

Like the other client commands (braidflow.client_cli), one request to the API; a refusal is
one clear message and exit status 1.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click

from braidflow.client_cli import (
    api_option,
    ask,
    backfill_time,
    mappings_of,
    newest_first_limit,
    query_string,
)

TIME_HELP = "ISO 8601 with an offset or Z, or a time ago: -30m, -2h, -7d."


def _moment(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    try:
        return backfill_time(text, time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command("audit")
@click.option("--principal", help="Only what this principal did.")
@click.option("--target", help="Only what was done to this id: a workflow, an execution...")
@click.option("--from", "from_", help=f"Only at this time or later: {TIME_HELP}")
@click.option("--to", help=f"Only at this time or earlier: {TIME_HELP}")
@newest_first_limit
@api_option
def audit(
    principal: str | None,
    target: str | None,
    from_: str | None,
    to: str | None,
    limit: int,
    api: str,
) -> None:
    """List the audit log, newest first, one record a line.

    Each line: when, the action, who (principal@tenant), what it was done to, and its detail.
    """
    params = query_string(
        principal=principal,
        target=target,
        limit=limit,
        **{"from": _moment(from_, "--from"), "to": _moment(to, "--to")},
    )
    records = mappings_of(ask(api, "GET", f"/audit{params}").get("records"))
    if not records:
        click.echo("no audit records")
    for record in records:
        click.echo(audit_line(record))


def _pairs(values: Any) -> str:
    if not isinstance(values, Mapping):
        return ""
    return " ".join(f"{k}={' '.join(str(v).split())}" for k, v in values.items())


def audit_line(record: Mapping[str, Any]) -> str:
    """`at  action  principal@tenant  workflow=w execution=e  reason=...`."""
    columns = [
        str(record.get("at") or "?"),
        f"{record.get('action') or '?'!s:<15}",
        f"{record.get('principal') or '?'}@{record.get('tenant') or '?'}",
        _pairs(record.get("target")) or "-",
        _pairs(record.get("detail")),
    ]
    return "  ".join(columns).rstrip()
