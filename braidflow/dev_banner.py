"""What `braidflow dev` prints once it is ready: commands that work as shown.

`make run` starts `.venv/bin/braidflow dev` without activating the virtualenv, so a
bare `braidflow` may not be on the PATH, or may be another installation. The banner
names the program that is running, unless `braidflow` on the PATH is that program,
and passes `--api` whenever the API is not where the commands look by default.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from braidflow.client_cli import API_KEY_ENV, DEFAULT_API


def cli_command(argv0: str, python: str, on_path: str | None) -> str:
    """How to run braidflow from another shell, given how this process was started.

    `argv0` is `sys.argv[0]`: the `braidflow` script, or the module's file under
    `python -m braidflow.cli`; `on_path` is what `braidflow` on the PATH resolves to.
    """
    program = Path(argv0)
    if program.name != "braidflow" or not os.access(program, os.X_OK):
        return f"{shlex.quote(python)} -m braidflow.cli"
    if on_path is not None and _same_file(program, Path(on_path)):
        return "braidflow"
    return shlex.quote(str(program.absolute()))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def ready_banner(
    api_url: str,
    broker: str,
    deployed: Sequence[tuple[str, Any]],
    cli: str,
    key: str | None = None,
    key_file: Path | None = None,
    demo_url: str | None = None,
) -> str:
    """The ready message: where things are, what was deployed, and commands to try.

    `deployed` holds (workflow id, sample input) pairs in deployment order; `key` is the
    owner API key dev mode made (None: authentication is off), kept in `key_file` where
    the CLI finds it, so its commands need no --api-key; `demo_url` is where the demo
    services (and the support department's alert channel) answer.
    """
    api_option = "" if api_url == DEFAULT_API else f" --api {shlex.quote(api_url)}"
    # The key itself stays out of the curl lines: one export, then they read as shown.
    bearer = "" if key is None else f' -H "authorization: Bearer ${API_KEY_ENV}"'
    lines = [
        "",
        f"braidflow is ready. API: {api_url}/api/v1  broker: {broker}",
        f"dashboard: {api_url}/"
        + ("" if key is None else "  (sign in with the owner API key below)"),
        f"deployed: {', '.join(w for w, _ in deployed) or '(none)'}",
    ]
    if key is None:
        lines.append("authentication is OFF: anyone who reaches the API acts as an owner")
    else:
        lines.append(f"owner API key: {key}")
        if key_file is not None:
            lines.append(f"  the CLI finds it in {key_file}; for curl: export {API_KEY_ENV}={key}")
    if deployed:
        workflow_id, sample = next(((w, s) for w, s in deployed if w == "fan-out"), deployed[0])
        body = json.dumps({"input": sample})
        lines += [
            "",
            "try:",
            f"  curl -s -X POST {api_url}/api/v1/workflows/{workflow_id}/executions{bearer}"
            f" -H 'content-type: application/json' -d {shlex.quote(body)}",
            f"  curl -s {api_url}/api/v1/executions/<execution_id>{bearer}",
            f"  {cli} run {workflow_id} --input {shlex.quote(json.dumps(sample))}"
            f" --wait{api_option}",
        ]
    if any(w == "ticket-escalation" for w, _ in deployed):
        opened = json.dumps({"ticket_id": "T-1", "priority": "high"})
        resolved = json.dumps(
            {
                "specversion": "1.0",
                "id": "evt-2",
                "source": "/helpdesk",
                "type": "ticket.resolved",
                "data": {"ticket_id": "T-1", "by": "ada"},
            }
        )
        lines += [
            "",
            "a domain event starts ticket-escalation; its resolution ends it:",
            f"  {cli} publish ticket.opened --data {shlex.quote(opened)}{api_option}",
            f"  curl -s -X POST {api_url}/api/v1/events{bearer}"
            f" -H 'content-type: application/json' -d {shlex.quote(resolved)}",
            f"  curl -s {api_url}/api/v1/workflows/ticket-escalation/executions{bearer}",
            f"  (any Kafka producer can publish too: CloudEvents on topic events.ticket"
            f" at {broker})",
        ]
    if any(w == "support-triage" for w, _ in deployed):
        created = json.dumps(
            {"ticket_id": "T-2", "priority": "high", "customer_email": "ada@example.test"}
        )
        resolved_t2 = json.dumps({"ticket_id": "T-2", "by": "ada"})
        lines += [
            "",
            "the support department (examples/support) takes its tickets' events:",
            f"  {cli} publish ticket.created --department support --data {shlex.quote(created)}"
            f"{api_option}",
            f"  {cli} publish ticket.resolved --department support"
            f" --data {shlex.quote(resolved_t2)}{api_option}",
        ]
        if demo_url is not None:
            lines.append(f"  curl -s {demo_url}/alerts   (its alert channel, when unresolved)")
    if any(w == "ticket-triage" for w, _ in deployed):
        arrived = json.dumps(
            {
                "ticket_id": "T-3",
                "priority": "high",
                "subject": "A question",
                "body": "Where is my invoice?",
                "customer_email": "ada@example.test",
            }
        )
        lines += [
            "",
            "ticket-triage classifies and answers a ticket with the demo model (a stand-in),"
            " mails the reply once approved:",
            f"  {cli} publish ticket.arrived --data {shlex.quote(arrived)}{api_option}",
            f"  {cli} approvals --workflow ticket-triage{api_option}",
            f"  {cli} approve <execution_id> approve --choice approve{api_option}",
        ]
        if demo_url is not None:
            lines.append(f"  curl -s {demo_url}/mail   (the demo mail sink: what it kept)")
    lines += ["", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)
