"""The `braidflow` command line. Thin: the work is done in `braidflow.topology`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from braidflow.client_audit import audit
from braidflow.client_cli import (
    COMMANDS,
    JSON_HELP,
    ApiUnreachable,
    api_option,
    client_api,
    parse_json_option,
    problem_lines,
)
from braidflow.client_workflows import WORKFLOW_COMMANDS
from braidflow.compiled import choose
from braidflow.config import (
    BROKER_ENV,
    KAFKA_CONFIG_ENV,
    Settings,
    SettingSource,
    setting_sources,
    settings_from_env,
)
from braidflow.engine import (
    LifecycleEvent,
    NodeCompleted,
    NodeFailed,
    RunNode,
    StartExecution,
    StepResult,
    TaskRequest,
    Transition,
)
from braidflow.engine.dry_run import completed_nodes, parse_answers
from braidflow.engine.dry_run import dry_run as drive
from braidflow.engine.state import ExecutionStatus, NodeStatus
from braidflow.kafka_connection import KafkaConfigError
from braidflow.key_commands import keys
from braidflow.kind_plugins import KindPluginError, use_custom_kinds
from braidflow.topology import (
    DefinitionError,
    Problem,
    Workflow,
    definition_schema,
    load_workflow,
    validate_text,
)
from braidflow.topology.approvers import role_like_approvers
from braidflow.topology.departments import (
    Department,
    declares_department,
    load_department,
    with_defaults,
)
from braidflow.topology.drafts import MAX_ROUNDS, ROUNDS, dry_run_answers
from braidflow.topology.loading import parse_text
from braidflow.topology.mermaid import mermaid

DRAFT_MODEL_ENV = "BRAIDFLOW_DRAFT_MODEL"
DRAFT_CONNECTION_ENV = "BRAIDFLOW_DRAFT_CONNECTION"
DRAFT_ROUND_S = 130
"""How long the command waits for one round of a draft (the worker's question: 2 min)."""


@click.group()
def main() -> None:
    """braidflow: workflows on Apache Kafka."""


def _with_custom_kinds() -> None:
    """Register the node kinds installed packages add, before a definition is read."""
    try:
        use_custom_kinds()
    except KindPluginError as exc:
        raise click.ClickException(str(exc)) from None


def _read(path: str) -> bytes:
    """The file's bytes; an unreadable file is a definition problem, not a stack trace."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DefinitionError([Problem("file", f"cannot read: {exc.strerror or exc}")]) from None


def _echo_problems(path: str, problems: list[Problem], *, err: bool = False) -> None:
    for problem in problems:
        click.echo(f"{path}: {problem}", err=err)


@main.command()
def schema() -> None:
    """Print the JSON Schema of workflow definitions."""
    _with_custom_kinds()
    click.echo(json.dumps(definition_schema(), indent=2))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
def validate(files: tuple[str, ...]) -> None:
    """Validate definition FILES: workflows, and departments (`kind: Department`).

    Prints one line per problem and exits with status 1 if there is any. Warnings
    (an approver that reads as a role but is not one) are printed too, exit 0.
    """
    _with_custom_kinds()
    failed = False
    for path in files:
        warnings: list[Problem] = []
        try:
            text = _read(path)
            problems = _problems(text)
            if not problems and not declares_department(parse_text(text)):
                warnings = role_like_approvers(load_workflow(text))
        except DefinitionError as exc:
            problems = exc.problems
        _echo_problems(path, problems)
        for warning in warnings:
            click.echo(f"{path}: warning: {warning}")
        failed = failed or bool(problems)
        if not problems and len(files) > 1:
            click.echo(f"{path}: ok")
    if failed:
        raise SystemExit(1)
    if len(files) == 1:
        click.echo("ok")


def _problems(text: bytes) -> list[Problem]:
    """Every problem of a workflow's or a department's text."""
    if not declares_department(parse_text(text)):
        return validate_text(text)
    load_department(text)
    return []


def _department(path: str | None) -> Department | None:
    """The department definition of `--department`, None without one."""
    if path is None:
        return None
    try:
        return load_department(_read(path))
    except DefinitionError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        raise click.BadParameter(f"{path}: {problems}", param_hint="--department") from None


@main.command()
@click.argument("file", type=click.Path())
def inspect(file: str) -> None:
    """Show the graph of definition FILE.

    Prints roots, branch and convergence points, leaves, parallel groups and the
    topological order, then a Mermaid flowchart.
    """
    _with_custom_kinds()
    try:
        workflow = load_workflow(_read(file))
    except DefinitionError as exc:
        _echo_problems(file, exc.problems, err=True)
        raise SystemExit(1) from None
    click.echo(_analysis(workflow))
    click.echo(mermaid(workflow), nl=False)


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none)"


def _analysis(workflow: Workflow) -> str:
    """The plain-text report of `inspect`, ending with a blank line."""
    definition, graph = workflow.definition, workflow.graph
    title = f" ({definition.name})" if definition.name else ""
    lines = [
        f"workflow: {definition.id}{title}",
        f"roots: {_listing(graph.roots)}",
        f"branch points: {_listing(graph.branch_points)}",
        f"convergence points: {_listing(graph.convergence_points)}",
        f"leaves: {_listing(graph.leaves)}",
    ]
    splits = [n.id for n in definition.nodes if n.type == "parallel"]
    groups = graph.parallel_groups(splits)
    lines.append("parallel groups:" if groups else "parallel groups: (none)")
    for group in groups:
        joined = f"converge at {group.converges_at}" if group.converges_at else "never converge"
        lines.append(f"  {group.split}: {len(group.branches)} branches, {joined}")
        lines.extend(
            f"    branch {i}: {', '.join(branch) or '(goes straight to the convergence)'}"
            for i, branch in enumerate(group.branches, 1)
        )
    lines.append(f"topological order: {_listing(graph.topological_order)}")
    return "\n".join(lines) + "\n"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), sort_keys=True, default=str)


def _load_answers(path: str | None) -> Any:
    if path is None:
        return {}
    try:
        return parse_answers(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--answers") from None


@main.command("dry-run")
@click.argument("file", type=click.Path())
@click.option(
    "--input", "input_", default="{}", callback=parse_json_option, help=f"Input: {JSON_HELP}"
)
@click.option(
    "--answers",
    type=click.Path(),
    help="YAML/JSON: node id to output, or to {error: message, type: name}.",
)
@click.option(
    "--department",
    type=click.Path(),
    help="A department definition: its context is read as dept.*, its node defaults apply.",
)
def dry_run(file: str, input_: Any, answers: str | None, department: str | None) -> None:
    """Preview an execution of FILE with the pure engine, no Kafka.

    Work nodes are answered from the answers file (an empty output when a node
    is not listed). Prints each step, joins firing, the path taken and the output.
    Exits 1 when the execution does not complete.
    """
    _with_custom_kinds()
    dept = _department(department)
    try:
        workflow = load_workflow(_read(file))
    except DefinitionError as exc:
        _echo_problems(file, exc.problems, err=True)
        raise SystemExit(1) from None
    if not _show_dry_run(with_defaults(workflow, dept), input_, _load_answers(answers), dept):
        raise SystemExit(1)


def _show_dry_run(workflow: Workflow, input_: Any, given: Any, dept: Department | None) -> bool:
    """Print a dry run of `workflow`; whether its execution completed."""
    click.echo(f"dry run of {workflow.id} with input {_json(input_)}")
    path: list[str] = []
    state = None
    context = None if dept is None else dept.context
    for number, (transition, result) in enumerate(drive(workflow, input_, given, dept=context), 1):
        click.echo(f"{number:>3}  {_describe(transition, result)}")
        for line in _effects(result):
            click.echo(f"       {line}")
        path.extend(completed_nodes(result))
        state = result.state
    assert state is not None
    click.echo(f"path: {' -> '.join(path) or '(none)'}")
    click.echo(f"status: {state.status}")
    if state.error is not None:
        where = f" at node '{state.error.node_id}'" if state.error.node_id else ""
        click.echo(f"error{where}: {state.error.type}: {state.error.message}")
    else:
        click.echo(f"output: {_json(state.output)}")
    return bool(state.status == ExecutionStatus.COMPLETED)


def _describe(transition: Transition, result: StepResult) -> str:
    if isinstance(transition, StartExecution):
        text = f"start {transition.execution_id}"
    elif isinstance(transition, RunNode):
        run = result.state.nodes.get(transition.node_id) if result.state else None
        joined = result.state.joins.get(transition.node_id) if result.state else None
        text = f"run {transition.node_id}"
        if joined is not None and run is not None and run.status == NodeStatus.COMPLETED:
            text += f" (join fired: {len(joined.taken)} arrived, {len(joined.dead)} dead)"
    elif isinstance(transition, NodeCompleted):
        text = f"{transition.node_id} answered {_json(transition.output)}"
    elif isinstance(transition, NodeFailed):
        text = f"{transition.node_id} failed: {transition.error.type}: {transition.error.message}"
    else:
        text = type(transition).__name__
    return f"{text}  [ignored: {result.ignored}]" if result.ignored else text


def _target(request: TaskRequest) -> str:
    """What a task request calls, after its kind: a handler, an http request, an llm
    connection and model, or nothing (the kind says it)."""
    given = request.input
    if request.handler:
        return f" {request.handler}"
    if request.kind == "http":
        return f" {given['method']} {given['url']}"
    if request.kind in ("llm", "classify", "extract", "summarize"):
        return f" {given['connection']} {given['model']}"
    return ""


def _effects(result: StepResult) -> list[str]:
    lines = []
    following = [o.node_id for o in result.outgoing if isinstance(o, RunNode)]
    if following:
        lines.append(f"next: {', '.join(following)}")
    # The end runs in the step that readies it: the node completed last before the
    # execution completes is that end.
    completed = None
    for out in result.outgoing:
        if isinstance(out, TaskRequest):
            lines.append(
                f"-> {out.kind}{_target(out)} input {_json(out.input)} key {out.idempotency_key}"
            )
        elif isinstance(out, LifecycleEvent) and out.type in ("node.skipped", "node.failed"):
            lines.append(f"{out.type} {out.node_id}")
        elif isinstance(out, LifecycleEvent) and out.type == "node.completed":
            completed = out.node_id
        elif isinstance(out, LifecycleEvent) and out.type == "workflow.completed":
            lines.append(f"{out.type} (end {completed})")
        elif isinstance(out, LifecycleEvent) and out.type.startswith("workflow."):
            lines.append(out.type)
    return lines


def _runtime_option(source: SettingSource) -> Any:
    default = "" if source.default in (None, ()) else f", {source.default}"
    if source.kind is bool:
        # A switch: --auth/--no-auth; unset, the variable (then the default) decides.
        off = f"--no-{source.option.removeprefix('--')}"
        return click.option(
            f"{source.option}/{off}",
            source.name,
            default=None,
            help=f"{source.help} [{source.env}{default}]",
        )
    return click.option(
        source.option,
        source.name,
        type={Path: click.Path(path_type=Path), tuple: str}.get(source.kind, source.kind),
        multiple=source.kind is tuple,
        help=f"{source.help} [{source.env}{default}]",
    )


def _runtime_options(command: Any) -> Any:
    """Options shared by `worker` and `dev`, one per setting (`config.setting_sources`);
    unset ones fall back to BRAIDFLOW_* variables."""
    options = [
        click.option(
            "--kafka-config",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Kafka client properties file (bootstrap.servers, security.protocol, ssl.*,"
            f" sasl.*; docs/kafka.md) [{KAFKA_CONFIG_ENV}].",
        ),
        *(_runtime_option(source) for source in setting_sources()),
        click.option("--loglevel", default="warning", show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(defaults: Settings | None = None, **options: Any) -> Settings:
    handlers = tuple(options.pop("handler_modules", ()) or ())
    try:
        settings = settings_from_env(defaults, **options)
    except KafkaConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if handlers:
        settings = replace(settings, handler_modules=settings.handler_modules + handlers)
    return settings


@main.command()
@click.option(
    "--broker",
    help="Kafka bootstrap servers, host:port[,host:port] (or kafka://host:port); over the"
    f" --kafka-config file's bootstrap.servers [{BROKER_ENV}, 127.0.0.1:9092].",
)
@_runtime_options
def worker(loglevel: str, **options: Any) -> None:
    """Run a worker on an existing Kafka: orchestrator, executors and the API."""
    # Imported here: Faust takes a second to import, which `validate` should not pay.
    from braidflow.runtime import WorkerFailed, build_runtime

    settings = _settings(**options)
    _say_if_pure()
    try:
        runtime = build_runtime(settings)
    except Exception as exc:
        # Broker unreachable, a topic with other partitions, a handler module that
        # does not import: a message, not a stack trace.
        raise click.ClickException(f"cannot start the worker: {exc}") from None
    try:
        runtime.run(loglevel)
    except WorkerFailed as exc:
        raise click.ClickException(str(exc)) from None


def _say_if_pure() -> None:
    """A worker whose hot modules run as Python says why (docs/install.md); a stale build
    has said so at import already."""
    build = choose()
    if not build.compiled and not build.stale:
        click.echo(f"braidflow: the engine and its codecs run {build.reason}", err=True)


@main.command()
@click.option(
    "--broker",
    envvar=BROKER_ENV,
    help="Use this Kafka instead of starting the embedded broker (so does --kafka-config).",
)
@click.option(
    "--examples",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("examples"),
    show_default=True,
    help="Workflows to deploy at start, with their handlers.py.",
)
@click.option(
    "--demo-port",
    type=click.IntRange(1, 65535),
    envvar="BRAIDFLOW_DEMO_PORT",
    help="Port of the demo services the examples call [BRAIDFLOW_DEMO_PORT, 8090].",
)
@_runtime_options
def dev(
    broker: str | None, examples: Path, demo_port: int | None, loglevel: str, **options: Any
) -> None:
    """Start an embedded broker, a worker and the API, and deploy the examples."""
    from braidflow.dev import run_dev  # lazily, as in `worker`
    from braidflow.runtime import WorkerFailed

    handlers = examples / "handlers.py"
    if handlers.exists():
        options["handler_modules"] = (*options.get("handler_modules", ()), str(handlers))
    kafka_config = options.get("kafka_config") or os.environ.get(KAFKA_CONFIG_ENV)
    embedded = broker is None and not kafka_config
    # Dev defaults under the user's own settings: a BRAIDFLOW_* variable or option wins.
    settings = _settings(Settings().for_dev(embedded=embedded), broker=broker, **options)
    _say_if_pure()
    try:
        run_dev(settings, embedded, examples, demo_port, loglevel)
    except (click.ClickException, WorkerFailed) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(f"cannot start dev mode: {exc}") from None


@main.command()
@click.argument("sentence")
@click.option("--edit", "edited", metavar="WORKFLOW", help="Change this deployed workflow.")
@click.option(
    "--model",
    envvar=DRAFT_MODEL_ENV,
    required=True,
    help=f"The model to ask (env {DRAFT_MODEL_ENV}).",
)
@click.option(
    "--connection",
    envvar=DRAFT_CONNECTION_ENV,
    help=f"The worker's llm connection to ask (env {DRAFT_CONNECTION_ENV}; default: the"
    " worker's only one).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, MAX_ROUNDS),
    default=ROUNDS,
    show_default=True,
    help="Answers asked for at most, each after braidflow's problems with the last.",
)
@click.option(
    "--input",
    "input_",
    default="{}",
    callback=parse_json_option,
    help=f"The dry run's input: {JSON_HELP}",
)
@click.option("--deploy", is_flag=True, help="Deploy the draft when it is valid.")
@api_option
def draft(
    sentence: str,
    edited: str | None,
    model: str,
    connection: str | None,
    rounds: int,
    input_: Any,
    deploy: bool,
    api: str,
) -> None:
    """Draft a workflow from SENTENCE with a model, through a worker (docs/drafts.md).

    Prints the problems of each answer sent back to the model, then the valid
    definition (with --edit, its diff with the deployed one), its graph as `inspect`
    shows it and a dry run. Deploys nothing without --deploy. Exits 1 when no
    answer was valid.
    """
    _with_custom_kinds()
    payload: dict[str, Any] = {"sentence": sentence, "model": model, "rounds": rounds}
    payload.update((k, v) for k, v in (("connection", connection), ("edit", edited)) if v)
    client = client_api(api)
    try:
        reply = client.call_json("POST", "/drafts", payload, timeout_s=rounds * DRAFT_ROUND_S)
    except ApiUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    if reply.status != 200 or not isinstance(reply.body, dict):
        for line in problem_lines("draft", reply):
            click.echo(line, err=True)
        raise SystemExit(1)
    drafted = reply.body
    for number, answer in enumerate(drafted["rounds"], 1):
        if answer["problems"]:
            click.echo(f"round {number}: {len(answer['problems'])} problem(s) sent back")
            for problem in answer["problems"]:
                click.echo(f"  {problem}")
    if not drafted["valid"]:
        click.echo(drafted["definition"], nl=False)
        raise click.ClickException(f"no valid definition after {len(drafted['rounds'])} rounds")
    text = drafted["definition"]
    click.echo(f"# definition (valid after {len(drafted['rounds'])} round(s))")
    click.echo(text, nl=False)
    if "diff" in drafted:
        click.echo("# diff")
        click.echo(drafted["diff"] or "(no change)\n", nl=False)
    try:
        workflow = load_workflow(text)
    except DefinitionError as exc:
        # The worker knows node kinds this machine does not (a package installed there only).
        _echo_problems("draft", exc.problems, err=True)
        raise SystemExit(1) from None
    click.echo("# inspect")
    click.echo(_analysis(workflow))
    click.echo(mermaid(workflow), nl=False)
    click.echo("# dry run")
    _show_dry_run(workflow, input_, parse_answers(dry_run_answers(workflow)), None)
    if deploy:
        deployed = client.call("POST", "/workflows", text.encode(), "application/yaml")
        if deployed.status not in (200, 201):
            for line in problem_lines("deploy", deployed):
                click.echo(line, err=True)
            raise SystemExit(1)
        click.echo(f"deployed {deployed.body['id']} version {deployed.body['version']}")


for _command in (*COMMANDS, *WORKFLOW_COMMANDS, audit, keys):
    main.add_command(_command)


if __name__ == "__main__":
    main()
