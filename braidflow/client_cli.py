"""The client commands: the command line as a client of the REST API.

`deploy`, `run`, `status`, `logs` and `publish`; the operator's controls `approve`,
`approvals`, `cancel`, `pause`, `resume`, `dead-letters`, `redrive` and `backfill`
(`workflows`, `executions` and `delete` are in braidflow.client_workflows).

Plain synchronous `urllib`: a CLI makes one request at a time. The API address
comes from `--api`, else `BRAIDFLOW_API`, else http://127.0.0.1:8080; the API key
from `--api-key`, else `BRAIDFLOW_API_KEY`, else the key `braidflow dev` wrote for
that same address (`dev_key_file`). Talking
to the API never ends in a stack trace: a refused connection, an unknown id or
a rejected definition or input is one clear message per line and exit status 1.

The formatting (an execution as JSON -> lines of text) is pure, in the
functions below the commands, so tests can drive it with plain dicts.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from braidflow.client_stream import StreamUnreachable, follow_events
from braidflow.engine.state import TERMINAL, ExecutionStatus, iso_time
from braidflow.schemas.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    CloudEventError,
    new_event,
    structured_document,
)
from braidflow.topology.durations import parse_duration, parse_timestamp

DEFAULT_API = "http://127.0.0.1:8080"
API_PREFIX = "/api/v1"
REQUEST_TIMEOUT_S = 10.0
CLI_EVENT_SOURCE = "/braidflow/cli"
# A backfill answers once it has read its range (the worker gives up after 120 s).
BACKFILL_TIMEOUT_S = 150.0


# --- talking to the API ----------------------------------------------------------


class ApiUnreachable(Exception):
    """No HTTP answer at all: connection refused, unknown host, timeout."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer of the API: its status and its body (JSON, else text)."""

    status: int
    body: Any

    def error_message(self) -> str:
        if isinstance(self.body, Mapping) and self.body.get("error"):
            return str(self.body["error"])
        text = str(self.body).strip() if self.body else ""
        return f"HTTP {self.status}" + (f": {text[:200]}" if text else "")

    def problems(self) -> list[str]:
        found = self.body.get("problems") if isinstance(self.body, Mapping) else None
        return [str(p) for p in found] if isinstance(found, list) else []


@dataclass(frozen=True, slots=True)
class Api:
    """The REST API of one braidflow worker, e.g. http://127.0.0.1:8080."""

    base: str
    key: str | None = None

    @classmethod
    def at(cls, address: str, key: str | None = None) -> Api:
        """From what a user types: `host:port`, with or without scheme or `/api/v1`; every
        request sends `key` (an API key or token) as its bearer credential."""
        base = address.strip().rstrip("/")
        if "://" not in base:
            base = f"http://{base}"
        return cls(base.removesuffix(API_PREFIX), key)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Reply:
        """One request to `/api/v1<path>`. Any HTTP status is a `Reply`; no answer raises."""
        request = urllib.request.Request(
            f"{self.base}{API_PREFIX}{path}", data=body, headers=dict(headers or {}), method=method
        )
        request.add_header("Accept", "application/json")
        if self.key and "Authorization" not in request.headers:
            request.add_header("Authorization", f"Bearer {self.key}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Reply(response.status, _decode(response.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, _decode(exc.read()))
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise ApiUnreachable(
                f"cannot reach the braidflow API at {self.base}: {reason}"
            ) from None
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed address
            raise ApiUnreachable(f"cannot reach the braidflow API at {self.base}: {exc}") from None

    def call_json(
        self, method: str, path: str, payload: Any, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> Reply:
        body = json.dumps(payload).encode()
        return self.call(method, path, body, "application/json", timeout_s=timeout_s)


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return text


def quote_id(identifier: str) -> str:
    return urllib.parse.quote(identifier, safe="")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _fail_reply(subject: str, reply: Reply) -> NoReturn:
    """Exit 1 with the API's problems, one per line, or its error message."""
    for line in problem_lines(subject, reply):
        click.echo(line, err=True)
    raise SystemExit(1)


API_KEY_ENV = "BRAIDFLOW_API_KEY"
_KEY_META = "braidflow.api_key"


def dev_key_file() -> Path:
    """Where `braidflow dev` writes its owner key, and the CLI looks for it:
    $XDG_CONFIG_HOME/braidflow/dev-api-key (default ~/.config)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "braidflow" / "dev-api-key"


def write_dev_key(api_url: str, key: str) -> Path:
    """Keep dev mode's key for the CLI, readable by this user only; the file."""
    path = dev_key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({"api": Api.at(api_url).base, "key": key}) + "\n")
    return path


def _dev_key_record() -> dict[str, Any]:
    try:
        found = json.loads(dev_key_file().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) and isinstance(found.get("key"), str) else {}


def dev_key_for(base: str) -> str | None:
    """The key dev mode wrote, if it wrote one for the API at `base` (never sent elsewhere)."""
    found = _dev_key_record()
    return str(found["key"]) if found.get("api") == base else None


def recorded_dev_key() -> str | None:
    """The key dev mode last wrote, for whichever API address."""
    found = _dev_key_record()
    return str(found["key"]) if found else None


def client_api(address: str) -> Api:
    """The API a client command talks to, with the key it was given (`--api-key`,
    BRAIDFLOW_API_KEY), else the one dev mode wrote for that address."""
    context = click.get_current_context(silent=True)
    given = None if context is None else context.meta.get(_KEY_META)
    api = Api.at(address)
    return Api.at(address, given or dev_key_for(api.base))


def _remember_key(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    ctx.meta[_KEY_META] = value


def api_option(command: Any) -> Any:
    """`--api` and `--api-key`, the options every client command takes."""
    command = click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        expose_value=False,
        callback=_remember_key,
        help=f"API key (or token) sent as the bearer credential (env {API_KEY_ENV}; default:"
        " the key braidflow dev wrote, when talking to its API).",
    )(command)
    return click.option(
        "--api",
        envvar="BRAIDFLOW_API",
        default=DEFAULT_API,
        show_default=True,
        help="Address of a braidflow worker's API (env BRAIDFLOW_API).",
    )(command)


def newest_first_limit(command: Any) -> Any:
    """`--limit` of a listing shown newest first: 1 to 1000 (the API's bound), 50 by default."""
    return click.option(
        "--limit",
        type=click.IntRange(1, 1000),
        default=50,
        show_default=True,
        help="At most this many, newest first.",
    )(command)


# --- commands --------------------------------------------------------------------


@click.command("deploy")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@api_option
def deploy(files: tuple[str, ...], api: str) -> None:
    """Deploy definition FILES (YAML or JSON); each deploy is a new version.

    Prints `FILE: deployed ID version N` (with `(unchanged)` when that exact
    text is already the latest version) and `FILE: warning: ...` for a task handler
    that is probably misspelt, or the problems one per line as `FILE: problem`;
    exits 1 if any file was rejected.
    """
    client = client_api(api)
    rejected = False
    for path in files:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc.strerror or exc}")
            rejected = True
            continue
        kind = "application/json" if path.endswith(".json") else "application/yaml"
        try:
            reply = client.call("POST", "/workflows", text, kind)
        except ApiUnreachable as exc:
            _fail(str(exc))
        if reply.status in (200, 201) and isinstance(reply.body, Mapping):
            body = reply.body
            # 200: this exact text is already the latest version; nothing new was made.
            same = " (unchanged)" if reply.status == 200 else ""
            # A `kind: Department` text is answered with its name instead of an id.
            what = body["department"] if "department" in body else body.get("id")
            click.echo(f"{path}: deployed {what} version {body.get('version')}{same}")
            for warning in body.get("warnings") or ():
                click.echo(f"{path}: warning: {warning}")
        else:
            for line in problem_lines(path, reply):
                click.echo(line)
            rejected = True
    if rejected:
        raise SystemExit(1)


def parse_json_option(
    _ctx: click.Context | None, _param: click.Parameter | None, value: str
) -> Any:
    """The JSON an option gives: inline, `@FILE` (read from FILE) or `-` (read from stdin).

    A large input goes through a file or stdin: the command line itself is limited in size.
    """
    where = ""
    if value == "-":
        value, where = click.get_text_stream("stdin").read(), " (stdin)"
    elif value.startswith("@"):
        path = value[1:]
        try:
            value, where = Path(path).read_text(encoding="utf-8"), f" ({path})"
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {path}: {getattr(exc, 'strerror', exc)}"
            ) from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON{where}: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


JSON_HELP = "JSON, @FILE to read it from FILE, or - to read it from stdin."


@click.command("run")
@click.argument("workflow")
@click.option(
    "--input", "input_", default="{}", callback=parse_json_option, help=f"The input: {JSON_HELP}"
)
@click.option("--wait", is_flag=True, help="Follow the execution until it ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="With --wait: stop waiting after this many seconds (exit 2).",
)
@click.option(
    "--version",
    type=click.IntRange(min=1),
    help="Run this version of WORKFLOW, not the latest.",
)
@api_option
def run(
    workflow: str, input_: Any, wait: bool, timeout: float, version: int | None, api: str
) -> None:
    """Start an execution of WORKFLOW and print its id.

    With --wait, follow the execution's event stream: a line each time a node moves,
    then the final status and the output. Exits 0 when completed, 1 when failed or cancelled,
    2 when --timeout passes first (the execution itself goes on).
    """
    client = client_api(api)
    path = f"/workflows/{quote_id(workflow)}/executions"
    try:
        payload = {"input": input_} if version is None else {"input": input_, "version": version}
        reply = client.call_json("POST", path, payload)
    except ApiUnreachable as exc:
        _fail(str(exc))
    if reply.status == 404:
        _fail(f"unknown workflow {workflow!r}" if version is None else reply.error_message())
    if reply.status not in (200, 201, 202) or not isinstance(reply.body, Mapping):
        _fail_reply(workflow, reply)
    execution_id = str(reply.body.get("execution_id"))
    click.echo(execution_id)
    if not wait:
        return
    path = f"/executions/{quote_id(execution_id)}"
    try:
        refused = follow_events(
            f"{client.base}{API_PREFIX}{path}/events", client.key, timeout, click.echo
        )
        reply = client.call("GET", path)
    except StreamUnreachable as exc:
        _fail(f"cannot reach the braidflow API at {client.base}: {exc}")
    except ApiUnreachable as exc:
        _fail(str(exc))
    if refused is not None and refused[0] != 0:
        _fail_reply(execution_id, Reply(*refused))
    execution = reply.body if reply.status == 200 and isinstance(reply.body, Mapping) else None
    if execution is None or execution.get("status") not in TERMINAL:
        now = execution.get("status") if execution else "not visible yet"
        click.echo(f"timed out after {timeout:g} s; execution {execution_id} is {now}")
        raise SystemExit(2)
    for line in outcome_lines(execution):
        click.echo(line)
    if execution.get("status") != ExecutionStatus.COMPLETED:
        raise SystemExit(1)


@click.command("status")
@click.argument("execution_id")
@api_option
def status(execution_id: str, api: str) -> None:
    """Show execution EXECUTION_ID: status, timings, every node, output or error."""
    try:
        reply = client_api(api).call("GET", f"/executions/{quote_id(execution_id)}")
    except ApiUnreachable as exc:
        _fail(str(exc))
    if reply.status == 404:
        _fail(f"unknown execution {execution_id!r}")
    if reply.status != 200 or not isinstance(reply.body, Mapping):
        _fail_reply(execution_id, reply)
    for line in execution_lines(reply.body):
        click.echo(line)


@click.command("logs")
@click.argument("execution_id")
@api_option
def logs(execution_id: str, api: str) -> None:
    """Print what the task handlers of execution EXECUTION_ID logged, by node run."""
    body = ask(api, "GET", f"/executions/{quote_id(execution_id)}/logs")
    for line in node_log_lines(mappings_of(body.get("logs"))):
        click.echo(line)


def _parse_data(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else parse_json_option(ctx, param, value)


@click.command("publish")
@click.argument("event_type", metavar="TYPE")
@click.option("--data", callback=_parse_data, help=f"The event's data: {JSON_HELP}")
@click.option("--subject", help="What the event is about, e.g. ticket-42 (its partition key).")
@click.option(
    "--source", default=CLI_EVENT_SOURCE, show_default=True, help="The CloudEvents source."
)
@click.option("--department", help="Only workflows of this department see the event.")
@api_option
def publish(
    event_type: str,
    data: Any,
    subject: str | None,
    source: str,
    department: str | None,
    api: str,
) -> None:
    """Publish a CloudEvent of TYPE (e.g. ticket.resolved) through the API.

    Workflows whose event triggers match it start. Prints `published ID to
    TOPIC`; exits 1 when the event is refused, naming the attribute at fault.
    """
    extensions = {} if department is None else {"department": department}
    try:
        event = new_event(event_type, data, source=source, subject=subject, extensions=extensions)
    except CloudEventError as exc:
        _fail(str(exc))
    body = json.dumps(structured_document(event), ensure_ascii=False).encode()
    content_type = f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8"
    try:
        reply = client_api(api).call("POST", "/events", body, content_type)
    except ApiUnreachable as exc:
        _fail(str(exc))
    if reply.status == 404:
        route = f"{client_api(api).base}{API_PREFIX}/events"
        _fail(f"no events route at {route}: is that a braidflow worker of this version?")
    if reply.status not in (200, 201, 202) or not isinstance(reply.body, Mapping):
        _fail(rejection_text(reply))
    topic = reply.body.get("topic")
    published = f"published {reply.body.get('id', event.id)}"
    click.echo(f"{published} to {topic}" if topic else published)


# --- operating executions: approvals, cancel/pause/resume, dead letters ----------


def ask(
    api: str,
    method: str,
    path: str,
    payload: Mapping[str, Any] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Mapping[str, Any]:
    """The body of a 2xx answer to one request; anything else exits 1 with one clear message."""
    client = client_api(api)
    try:
        if payload is None:
            reply = client.call(method, path, timeout_s=timeout_s)
        else:
            reply = client.call_json(method, path, payload, timeout_s)
    except ApiUnreachable as exc:
        _fail(str(exc))
    if 200 <= reply.status < 300 and isinstance(reply.body, Mapping):
        return reply.body
    route = f"{method} {client.base}{API_PREFIX}{path.partition('?')[0]}"
    for line in refusal_lines(route, reply):
        click.echo(line, err=True)
    raise SystemExit(1)


def query_string(**params: Any) -> str:
    """`?a=1&b=x` of the params that were given, or nothing."""
    given = {name: value for name, value in params.items() if value is not None}
    return f"?{urllib.parse.urlencode(given)}" if given else ""


@click.command("approve")
@click.argument("execution_id")
@click.argument("node_id")
@click.option("--choice", required=True, help="One of the choices the approval node offers.")
@click.option("--comment", help="Why, kept with the decision.")
@click.option("--data", callback=_parse_data, help=f"The reply's data: {JSON_HELP}")
@api_option
def approve(
    execution_id: str,
    node_id: str,
    choice: str,
    comment: str | None,
    data: Any,
    api: str,
) -> None:
    """Decide approval NODE_ID of execution EXECUTION_ID.

    The decision is by whoever the API key is. Prints `approved: NODE of EXECUTION:
    CHOICE by NAME`, and a line saying it
    applies on resume when the execution is paused; exits 1 when the approval is
    unknown, already decided, or the choice or data is refused (each problem on
    a line of its own).
    """
    path = f"/executions/{quote_id(execution_id)}/approvals/{quote_id(node_id)}"
    body = ask(api, "POST", path, {"choice": choice, "comment": comment, "data": data})
    click.echo(
        f"approved: {body.get('node_id', node_id)} of {body.get('execution_id', execution_id)}:"
        f" {body.get('choice', choice)} by {body.get('by', '?')}"
    )
    if body.get("applies_on_resume"):
        click.echo("the execution is paused: the decision applies when it is resumed")


@click.command("approvals")
@click.option("--workflow", help="Only approvals of this workflow.")
@click.option("--department", help="Only approvals for this department.")
@api_option
def approvals(workflow: str | None, department: str | None, api: str) -> None:
    """List the approvals waiting for a decision, one a line."""
    body = ask(api, "GET", f"/approvals{query_string(workflow=workflow, department=department)}")
    pending = mappings_of(body.get("approvals"))
    if not pending:
        click.echo("no pending approvals")
    for approval in pending:
        click.echo(approval_line(approval))


def _control_command(action: str, reason_help: str, description: str) -> click.Command:
    """`braidflow <action> EXECUTION_ID [--reason]`: the controls differ only in what they ask
    for and their help; each prints `<action> requested for ID`."""

    @click.command(action, help=description)
    @click.argument("execution_id")
    @click.option("--reason", help=reason_help)
    @api_option
    def control(execution_id: str, reason: str | None, api: str) -> None:
        payload = {} if reason is None else {"reason": reason}
        body = ask(api, "POST", f"/executions/{quote_id(execution_id)}/{action}", payload)
        click.echo(
            f"{body.get('action', action)} requested for {body.get('execution_id', execution_id)}"
        )

    return control


cancel = _control_command(
    "cancel",
    "Why, kept with the cancellation.",
    "Ask to cancel execution EXECUTION_ID; prints `cancel requested for ID`.",
)
pause = _control_command(
    "pause",
    "Why, kept with the pause in the execution's control record.",
    "Ask to pause execution EXECUTION_ID; prints `pause requested for ID`.",
)
resume = _control_command(
    "resume",
    "Why, kept with the resume in the execution's control record.",
    "Ask to resume paused execution EXECUTION_ID; prints `resume requested for ID`.",
)


@click.command("dead-letters")
@click.option("--workflow", help="Only dead letters of this workflow.")
@click.option(
    "--kind",
    type=click.Choice(["node", "record"]),
    help="node: a node that failed for good; record: a Kafka record that could not be read.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@api_option
def dead_letters(workflow: str | None, kind: str | None, limit: int | None, api: str) -> None:
    """List dead letters, one a line: failed nodes and unreadable records."""
    body = ask(
        api, "GET", f"/dead-letters{query_string(workflow=workflow, kind=kind, limit=limit)}"
    )
    letters = mappings_of(body.get("dead_letters"))
    if not letters:
        click.echo("no dead letters")
    for letter in letters:
        click.echo(dead_letter_line(letter))


def _parse_given(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[Any] | None:
    """`(value,)` when given: the API tells JSON `null` apart from no value at all."""
    return None if value is None else (parse_json_option(ctx, param, value),)


@click.command("redrive")
@click.argument("dead_letter_id")
@click.option(
    "--input", "input_", callback=_parse_given, help=f"Run the node with this input: {JSON_HELP}"
)
@api_option
def redrive(dead_letter_id: str, input_: tuple[Any] | None, api: str) -> None:
    """Run the failed node of dead letter DEAD_LETTER_ID again.

    Prints `redriving NODE of EXECUTION`; exits 1 when the dead letter is
    unknown or cannot be redriven (a record, or its execution is running).
    """
    payload = {} if input_ is None else {"input": input_[0]}
    body = ask(api, "POST", f"/dead-letters/{quote_id(dead_letter_id)}/redrive", payload)
    click.echo(f"redriving {body.get('node_id', '?')} of {body.get('execution_id', '?')}")


@click.command("backfill")
@click.argument("workflow")
@click.option("--from", "from_", required=True, help="Start of the range: ISO 8601, or -2h, -7d.")
@click.option("--to", "to", help="End of the range: ISO 8601, or -1h; default now.")
@api_option
def backfill(workflow: str, from_: str, to: str | None, api: str) -> None:
    """Start WORKFLOW for the past events of a time range that its event triggers match.

    TIME is ISO 8601 with an offset or Z (`2026-12-05T09:00:00Z`), or a time ago
    (`-30m`, `-2h`, `-7d`) by this machine's clock. Each event starts one execution
    however often it is backfilled; prints how many matched and were started.
    """
    now = time.time_ns() // 1_000_000
    payload = {"from": _moment(from_, now, "--from")}
    if to is not None:
        payload["to"] = _moment(to, now, "--to")
    path = f"/workflows/{quote_id(workflow)}/backfill"
    body = ask(api, "POST", path, payload, BACKFILL_TIMEOUT_S)
    click.echo(backfill_line(body))


def _moment(text: str, now_ms: int, option: str) -> str:
    try:
        return backfill_time(text, now_ms)
    except ValueError as exc:
        _fail(f"{option}: {exc}")


COMMANDS = (
    deploy,
    run,
    status,
    logs,
    publish,
    approve,
    approvals,
    cancel,
    pause,
    resume,
    dead_letters,
    redrive,
    backfill,
)
"""For `for command in COMMANDS: main.add_command(command)`."""


# --- formatting (pure) -----------------------------------------------------------


def backfill_time(text: str, now_ms: int) -> str:
    """The ISO-8601 time the API takes for `--from`/`--to`: ISO 8601 as given, or `-<duration>`
    (`-2h`) before `now_ms`. ValueError naming the text otherwise."""
    if text.startswith("-"):
        try:
            ago = parse_duration(text[1:])
        except ValueError:
            raise ValueError(f"{text!r} is not a time ago such as -30m, -2h or -7d") from None
        return iso_time(now_ms - ago)
    parse_timestamp(text)
    return text


def node_log_lines(runs: list[Mapping[str, Any]]) -> list[str]:
    """Each node run as a heading, `node (attempt N, item I):`, then its lines, `at  level
    message` (a message's further lines indented under it), and what was cut."""
    if not runs:
        return ["no log lines"]
    out: list[str] = []
    for run in runs:
        item = run.get("item")
        where = f"attempt {run.get('attempt', '?')}" + ("" if item is None else f", item {item}")
        out.append(f"{run.get('node_id') or '?'} ({where}):")
        for line in mappings_of(run.get("lines")):
            first, *more = str(line.get("message") or "").splitlines() or [""]
            out.append(f"  {line.get('at') or '?'}  {line.get('level') or '?'!s:<8} {first}")
            out.extend(f"  {'':24}  {'':8} {text}" for text in more)
        # Lines left out are said by the line the API puts where they were.
        if run.get("cut") and not run.get("cut_lines"):
            out.append("  (cut: long lines shortened)")
    return out


def backfill_line(report: Mapping[str, Any]) -> str:
    """One line for a backfill's answer."""
    refused = report.get("refused")
    return (
        f"{report.get('workflow_id')}: {report.get('matched')} events matched from"
        f" {report.get('from')} to {report.get('to')}: {report.get('started')} started,"
        f" {report.get('already_started')} already started"
        + (f", {refused} refused (the worker log says why)" if refused else "")
        + f" ({report.get('read')} records read)"
    )


def rejection_text(reply: Reply) -> str:
    """`field: problem` from an `{error, field}` answer, without naming the field twice."""
    message = reply.error_message()
    field = reply.body.get("field") if isinstance(reply.body, Mapping) else None
    if not field or message.startswith(f"{field}:"):
        return message
    return f"{field}: {message}"


def problem_lines(subject: str, reply: Reply) -> list[str]:
    """`subject: problem` per problem the API named, else `subject: error message`."""
    problems = reply.problems()
    if problems:
        return [f"{subject}: {problem}" for problem in problems]
    return [f"{subject}: {reply.error_message()}"]


def _millis_between(start: Any, end: Any) -> int | None:
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except (TypeError, ValueError):  # unparsable, or naive minus aware
        return None
    return round(delta.total_seconds() * 1000)


def _duration(node: Mapping[str, Any]) -> str:
    ms = node.get("duration_ms")
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        ms = _millis_between(node.get("started_at"), node.get("completed_at"))
    return "" if ms is None else f"{round(ms)} ms"


def error_text(error: Mapping[str, Any] | None) -> str:
    """`Type: message`, from an `{type, message, node_id}` error."""
    if not error:
        return ""
    kind, message = error.get("type"), error.get("message")
    return f"{kind}: {message}" if kind and message else str(message or kind or "error")


def node_line(node: Mapping[str, Any], width: int = 0) -> str:
    """`  fetch  completed  12 ms`, plus the attempt when retried and the error when failed."""
    parts = [f"  {node.get('node_id', '?')!s:<{width}}", str(node.get("status", "?"))]
    attempt = node.get("attempt")
    if isinstance(attempt, int) and attempt > 1:
        parts.append(f"attempt {attempt}")
    items = node.get("items")
    if isinstance(items, Mapping):
        failed = items.get("failed") or 0
        parts.append(
            f"items {items.get('done', 0)}/{items.get('total', '?')}"
            + (f" ({failed} failed)" if failed else "")
        )
    duration = _duration(node)
    if duration:
        parts.append(duration)
    if isinstance(node.get("error"), Mapping):
        parts.append(error_text(node["error"]))
    return "  ".join(parts)


def _nodes(execution: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [n for n in execution.get("nodes") or [] if isinstance(n, Mapping)]


def _width(nodes: list[Mapping[str, Any]]) -> int:
    return max((len(str(n.get("node_id", ""))) for n in nodes), default=0)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def outcome_lines(execution: Mapping[str, Any]) -> list[str]:
    """The final status, then the error, or the output as indented JSON."""
    lines = [f"status: {execution.get('status', '?')}"]
    error = execution.get("error")
    if isinstance(error, Mapping):
        where = f" at node '{error['node_id']}'" if error.get("node_id") else ""
        lines.append(f"error{where}: {error_text(error)}")
    elif execution.get("status") == ExecutionStatus.COMPLETED:
        lines.extend(f"output: {_json(execution.get('output'))}".splitlines())
    return lines


def execution_lines(execution: Mapping[str, Any]) -> list[str]:
    """Everything `status` prints about one execution."""
    workflow = str(execution.get("workflow_id", "?"))
    if execution.get("workflow_version") is not None:
        workflow += f" (version {execution['workflow_version']})"
    lines = [
        f"execution  {execution.get('execution_id', '?')}",
        f"workflow   {workflow}",
        f"status     {status_text(execution)}",
    ]
    if execution.get("accepted_at"):
        lines.append(f"accepted   {execution['accepted_at']} (not started yet)")
    if execution.get("started_at"):
        lines.append(f"started    {execution['started_at']}")
    if isinstance(execution.get("started_by"), Mapping):
        lines.append(f"started by {started_by_text(execution['started_by'])}")
    if execution.get("completed_at"):
        took = _millis_between(execution.get("started_at"), execution["completed_at"])
        lines.append(
            f"ended      {execution['completed_at']}"
            + (f" ({took} ms)" if took is not None else "")
        )
    progress = execution.get("progress")
    if isinstance(progress, Mapping) and progress.get("total_nodes") is not None:
        done = progress.get("completed_nodes", 0)
        lines.append(f"progress   {done}/{progress['total_nodes']} nodes")
    nodes = _nodes(execution)
    if nodes:
        lines.append("nodes:")
        width = _width(nodes)
        lines.extend(node_line(node, width) for node in nodes)
    controls = mappings_of(execution.get("control"))
    if controls:
        lines.append("control:")
        lines.extend(f"  {control_text(c)}" for c in controls)
    if execution.get("input") is not None:
        lines.append(f"input: {json.dumps(execution['input'], ensure_ascii=False, default=str)}")
    lines.extend(outcome_lines(execution)[1:])
    return lines


def status_text(execution: Mapping[str, Any]) -> str:
    """`running`, or for a paused execution what it holds until it is resumed:
    `paused (2 transitions held until resumed: NodeCompleted fetch, ApprovalDecided review)`."""
    status = str(execution.get("status", "?"))
    if not execution.get("paused") or status in TERMINAL:
        return status
    held = execution.get("held") or 0
    noun = "transition" if held == 1 else "transitions"
    kinds = [
        " ".join(str(part) for part in (t.get("kind"), t.get("node_id")) if part)
        for t in mappings_of(execution.get("held_transitions"))
    ]
    what = f": {', '.join(kinds)}" if kinds else ""
    return f"paused ({held} {noun} held until resumed{what})"


def started_by_text(trigger: Mapping[str, Any]) -> str:
    """`event ticket.opened id e-1 from /desk subject T-7 at 2026-…`, `parent …`, or `api`."""
    kind = str(trigger.get("kind") or "?")
    if kind == "parent":
        return (
            f"parent {trigger.get('execution_id', '?')}"
            f" ({trigger.get('workflow_id', '?')}, node {trigger.get('node_id', '?')})"
        )
    if kind == "api":
        return "api"
    parts = [kind, str(trigger.get("type") or "?"), f"id {trigger.get('id') or '?'}"]
    if trigger.get("source"):
        parts.append(f"from {trigger['source']}")
    if trigger.get("subject"):
        parts.append(f"subject {trigger['subject']}")
    if trigger.get("time"):
        parts.append(f"at {trigger['time']}")
    return " ".join(parts)


def control_text(control: Mapping[str, Any]) -> str:
    """`2026-…  pause by ana: audit` (the node after the action when there is one)."""
    action = str(control.get("action") or "?")
    if control.get("node_id"):
        action += f" {control['node_id']}"
    line = f"{control.get('at') or '?'}  {action} by {control.get('by') or '?'}"
    return f"{line}: {_one_line(control['reason'])}" if control.get("reason") else line


def refusal_lines(route: str, reply: Reply) -> list[str]:
    """`error: message`, then the problems the API named, indented, one a line.

    A 404 without the API's `{error}` body is the web server's: the worker
    lacks the route (an older version), which an unknown id must not be taken for.
    """
    has_error = isinstance(reply.body, Mapping) and bool(reply.body.get("error"))
    if reply.status == 404 and not has_error:
        return [f"error: no route {route}: is that a braidflow worker of this version?"]
    return [f"error: {reply.error_message()}", *(f"  {p}" for p in reply.problems())]


def mappings_of(items: Any) -> list[Mapping[str, Any]]:
    return [item for item in items or [] if isinstance(item, Mapping)]


def _one_line(text: Any) -> str:
    # A multi-line message would break the one-entry-a-line listing.
    return " ".join(str(text or "").split())


def approval_line(approval: Mapping[str, Any]) -> str:
    """`requested_at  workflow  execution  node  [choice, ...]  message`."""
    choices = approval.get("choices")
    offered = ", ".join(map(str, choices)) if isinstance(choices, list) else "?"
    columns = ("requested_at", "workflow_id", "execution_id", "node_id")
    fields = [*(str(approval.get(key) or "?") for key in columns), f"[{offered}]"]
    return "  ".join([*fields, _one_line(approval.get("message"))]).rstrip()


def dead_letter_line(letter: Mapping[str, Any]) -> str:
    """A failed node: `at  id  workflow/node  Type: message` (its last error).

    A record: `at  id  reason`, and which payloads it kept only the head of.
    Either ends with `  redriven at T` once redriven.
    """
    head = f"{letter.get('at') or '?'}  {letter.get('id') or '?'}"
    if letter.get("kind") == "node":
        errors = mappings_of(letter.get("errors"))
        where = f"{letter.get('workflow_id') or '?'}/{letter.get('node_id') or '?'}"
        line = f"{head}  {where}  {_one_line(error_text(errors[-1]) if errors else 'no error')}"
    else:
        line = f"{head}  {_one_line(letter.get('reason')) or '?'}"
    cut = letter.get("truncated")
    if isinstance(cut, Mapping) and cut:
        line += f"  (kept the head of: {', '.join(map(str, cut))})"
    redriven = letter.get("redriven_at")
    return f"{line}  redriven at {redriven}" if redriven else line
