"""The client commands about deployed workflows: `workflows`, `executions`, `delete`, and
their versions: `versions`, `rollback` and `diff`.

Like the other client commands (braidflow.client_cli), each is one request to
the REST API, and a refusal is one clear message and exit status 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from braidflow.client_cli import (
    api_option,
    ask,
    mappings_of,
    newest_first_limit,
    query_string,
    quote_id,
)


@click.command("workflows")
@api_option
def workflows(api: str) -> None:
    """List the deployed workflows, one a line: id, latest version, name, deployed at."""
    found = mappings_of(ask(api, "GET", "/workflows").get("workflows"))
    if not found:
        click.echo("no workflows deployed")
    for line in workflow_lines(found):
        click.echo(line)


@click.command("executions")
@click.argument("workflow")
@click.option("--status", help="Only those with this status, e.g. running or failed.")
@newest_first_limit
@click.option("--from", "from_", help="Only those started at this time or later (ISO 8601).")
@click.option("--to", help="Only those started at this time or earlier (ISO 8601).")
@click.option("--event-type", help="Only those an event of this type started.")
@click.option("--event-id", help="Only those the event with this id started.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Only those whose input holds VALUE at FIELD (customer.name=ada); repeatable.",
)
@api_option
def executions(
    workflow: str,
    status: str | None,
    limit: int,
    from_: str | None,
    to: str | None,
    event_type: str | None,
    event_id: str | None,
    inputs: tuple[str, ...],
    api: str,
) -> None:
    """List the executions of WORKFLOW, newest first, one a line; the options search them
    (docs/api.md, searching executions).

    Each line: started at, execution id, version, status, ended at, and the
    event that started it, if one did.
    """
    fields = {}
    for given in inputs:
        name, equals, value = given.partition("=")
        if not equals:
            raise click.BadParameter(f"{given!r} is not FIELD=VALUE", param_hint="--input")
        fields[f"input.{name}"] = value
    query = query_string(
        status=status,
        limit=limit,
        **{"from": from_, "to": to, "event_type": event_type, "event_id": event_id},
        **fields,
    )
    path = f"/workflows/{quote_id(workflow)}/executions{query}"
    found = mappings_of(ask(api, "GET", path).get("executions"))
    if not found:
        searched = bool(from_ or to or event_type or event_id or fields)
        click.echo(
            f"no executions of {workflow}"
            + (f" with status {status}" if status else "")
            + (" found by the search" if searched else "")
        )
    for execution in found:
        click.echo(execution_summary_line(execution))


@click.command("delete")
@click.argument("workflow")
@api_option
def delete(workflow: str, api: str) -> None:
    """Remove WORKFLOW: no new executions or triggers of it; running ones go on.

    Its executions stay listed; a later deploy continues its version numbers.
    """
    body = ask(api, "DELETE", f"/workflows/{quote_id(workflow)}")
    click.echo(f"deleted {body.get('id', workflow)}; running executions of it go on")


@click.command("versions")
@click.argument("workflow")
@api_option
def versions(workflow: str, api: str) -> None:
    """List the versions of WORKFLOW, oldest first: version, deployed at, by whom, rollbacks."""
    found = mappings_of(
        ask(api, "GET", f"/workflows/{quote_id(workflow)}/versions").get("versions")
    )
    for version in found:
        click.echo(version_line(version))


@click.command("rollback")
@click.argument("workflow")
@click.argument("version", type=click.IntRange(min=1))
@api_option
def rollback(workflow: str, version: int, api: str) -> None:
    """Make VERSION's text the current one again, as a new version of WORKFLOW.

    Running executions stay on the version they started with.
    """
    path = f"/workflows/{quote_id(workflow)}/rollback"
    body = ask(api, "POST", path, {"version": version})
    if body.get("restores") is None:
        click.echo(f"{workflow} version {body.get('version')} has that text already (unchanged)")
    else:
        click.echo(
            f"{workflow} version {body.get('version')}: the text of version {body['restores']}"
            f" (rolled back from version {body.get('rolled_back_from')})"
        )


@click.command("diff")
@click.argument("workflow")
@click.argument("from_", metavar="FROM", type=click.IntRange(min=1))
@click.argument("to", type=click.IntRange(min=1))
@api_option
def diff(workflow: str, from_: int, to: int, api: str) -> None:
    """Show what changed in WORKFLOW from version FROM to version TO: the nodes added,
    removed and changed, then the unified diff of the texts."""
    path = f"/workflows/{quote_id(workflow)}/diff{query_string(**{'from': from_, 'to': to})}"
    for line in diff_lines(ask(api, "GET", path)):
        click.echo(line)


WORKFLOW_COMMANDS = (workflows, executions, delete, versions, rollback, diff)
"""For `for command in WORKFLOW_COMMANDS: main.add_command(command)`."""


def workflow_lines(found: list[Mapping[str, Any]]) -> list[str]:
    """`id  version N  name  deployed_at`, the ids padded to one column."""
    width = max((len(str(w.get("id") or "?")) for w in found), default=0)
    lines = []
    for w in found:
        columns = [
            f"{w.get('id') or '?'!s:<{width}}",
            f"version {w.get('version', '?')}",
            str(w.get("name") or "-"),
            str(w.get("deployed_at") or "?"),
        ]
        lines.append("  ".join(columns))
    return lines


def execution_summary_line(execution: Mapping[str, Any]) -> str:
    """`started_at  id  vN  status  ended_at  event TYPE ID`, from a list entry of the API."""
    columns = [
        str(execution.get("started_at") or "?"),
        str(execution.get("execution_id") or "?"),
        f"v{execution.get('workflow_version', '?')}",
        f"{execution.get('status') or '?'!s:<9}",
        str(execution.get("completed_at") or "-"),
    ]
    event = execution.get("event")
    if isinstance(event, Mapping):
        columns.append(f"event {event.get('type') or '?'} {event.get('id') or '?'}")
    return "  ".join(columns).rstrip()


def version_line(version: Mapping[str, Any]) -> str:
    """`vN  deployed_at  by WHO` and, for a rollback, `rollback to vR from vF`."""
    columns = [
        f"v{version.get('version', '?')}",
        str(version.get("deployed_at") or "?"),
        f"by {version.get('deployed_by') or '(not recorded)'}",
    ]
    if version.get("restores") is not None:
        columns.append(
            f"rollback to v{version['restores']} from v{version.get('rolled_back_from', '?')}"
        )
    return "  ".join(columns)


def diff_lines(answer: Mapping[str, Any]) -> list[str]:
    """The node summary (`added: a, b`, one line per kind that has any), then the diff."""
    nodes = answer.get("nodes") if isinstance(answer.get("nodes"), Mapping) else {}
    lines = [
        f"{kind}: {', '.join(str(n) for n in nodes[kind])}"
        for kind in ("added", "removed", "changed")
        if nodes.get(kind)
    ]
    text = str(answer.get("diff") or "")
    if not text:
        lines.append(f"versions {answer.get('from')} and {answer.get('to')} have the same text")
    return lines + text.splitlines()
