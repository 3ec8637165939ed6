"""Node kinds another package adds through the `braidflow.nodes` entry points: validation, the
JSON Schema and the engine pick them up; a kind taking a built-in's name or with a params
schema that is no JSON Schema is refused naming its package.

The packages are real distributions of the tests' own (`tests/fixtures/custom_kinds`: a
module and its `*.dist-info` with `entry_points.txt`), put on the path of a `braidflow`
subprocess, so importlib.metadata finds them as it finds an installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import Distribution
from pathlib import Path
from typing import Any

import pytest

from braidflow.config import Settings
from braidflow.engine import NodeCompleted, NodeFailed, Transition
from braidflow.engine.messages import TaskRequest
from braidflow.kind_plugins import KindPluginError, read_custom_kinds
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.executor import Executor, custom_kind_run
from braidflow.tasks import TaskRegistry
from braidflow.topology.kinds import (
    BRANCHING_TYPES,
    NODE_TYPES,
    TEMPLATED_PARAMS,
    WAIT_TYPES,
    KindNames,
)

PACKAGES = Path(__file__).parent.parent / "fixtures" / "custom_kinds"
GREETING = PACKAGES / "greeting"
REFUSED = PACKAGES / "refused"

GREETER = """\
id: greeter
input:
  type: object
  required: [who]
  properties:
    who: {type: string}
nodes:
  - id: hello
    type: greet
    params: {name: "${input.who}", salutation: SALUTATION}
    retry: {max_attempts: 2, backoff: fixed, initial: 1s}
  - id: done
    type: end
    params: {output: "${nodes.hello.output}"}
  - id: nobody
    type: end
    params: {output: {error: "${nodes.hello.error.type}"}}
edges:
  - {from: hello, to: done}
  - {from: hello, to: nobody, on_error: true}
"""


def braidflow(*args: str, packages: Path | None = None, cwd: Path | None = None) -> Any:
    """`braidflow ARGS` in a fresh interpreter, with `packages` on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if packages is not None:
        env["PYTHONPATH"] = str(packages)
    return subprocess.run(
        [sys.executable, "-m", "braidflow.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def greeter(tmp_path: Path, salutation: str) -> Path:
    path = tmp_path / "greeter.yaml"
    path.write_text(GREETER.replace("SALUTATION", salutation))
    return path


def test_validation_names_a_bad_param_of_a_node_of_a_package_s_kind(tmp_path: Path) -> None:
    path = greeter(tmp_path, "Howdy")
    ran = braidflow("validate", str(path), packages=GREETING)
    assert ran.returncode == 1
    assert ran.stdout == (
        f"{path}: node 'hello': params.salutation:"
        " 'Howdy' is not one of ['Hello', 'Good morning']\n"
    )


def test_a_node_of_a_package_s_kind_validates_and_is_unknown_without_the_package(
    tmp_path: Path,
) -> None:
    path = greeter(tmp_path, "Hello")
    ran = braidflow("validate", str(path), packages=GREETING)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "ok\n", "")
    without = braidflow("validate", str(path))
    assert without.returncode == 1
    assert f"{path}: node 'hello': unknown type 'greet'" in without.stdout


FOREACH_GREETER = """\
id: greeters
input:
  type: object
  required: [who]
  properties:
    who: {type: array, items: {type: string}}
nodes:
  - id: each
    type: foreach
    params:
      items: "${input.who}"
      do: {type: greet, params: {name: "${item}", salutation: SALUTATION}}
  - id: done
    type: end
edges:
  - {from: each, to: done}
"""


def test_a_package_s_kind_may_be_a_foreach_s_inline_node_its_params_checked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "greeters.yaml"
    path.write_text(FOREACH_GREETER.replace("SALUTATION", "Hello"))
    ran = braidflow("validate", str(path), packages=GREETING)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "ok\n", "")
    path.write_text(FOREACH_GREETER.replace("SALUTATION", "Howdy"))
    refused = braidflow("validate", str(path), packages=GREETING)
    assert refused.returncode == 1
    assert "node 'each': params.do.params.salutation: 'Howdy' is not one of" in refused.stdout


def test_the_json_schema_has_a_package_s_kind_and_its_params() -> None:
    ran = braidflow("schema", packages=GREETING)
    assert ran.returncode == 0, ran.stderr
    schema = json.loads(ran.stdout)
    assert "greet" in schema["$defs"]["node"]["properties"]["type"]["enum"]
    params = schema["$defs"]["params_greet"]
    assert params["required"] == ["name"]
    assert set(params["properties"]) == {"name", "salutation"}


def test_a_dry_run_renders_the_templated_params_of_a_package_s_kind(tmp_path: Path) -> None:
    path = greeter(tmp_path, "Good morning")
    answers = tmp_path / "answers.yaml"
    answers.write_text("hello: {greeting: hi}\n")
    ran = braidflow(
        "dry-run", str(path), "--input", '{"who": "Ada"}', "--answers", str(answers),
        packages=GREETING,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (
        '-> greet input {"name": "Ada", "salutation": "Good morning"} key dry-run:hello:1'
        in ran.stdout
    )
    assert 'output: {"greeting": "hi"}' in ran.stdout


def test_kinds_refused_stop_the_command_with_one_message_naming_the_package(
    tmp_path: Path,
) -> None:
    ran = braidflow("validate", str(greeter(tmp_path, "Hello")), packages=REFUSED)
    assert ran.returncode == 1
    assert ran.stdout == ""
    assert ran.stderr.startswith(
        "Error: custom node kinds refused (braidflow.nodes entry points):"
        " package 'acme-refused' (chant = acme_refused:CHANT):"
    )
    assert (
        "package 'acme-refused' (http = acme_refused:HTTP): kind 'http' clashes with a"
        " built-in kind;" in ran.stderr
    )
    assert "Traceback" not in ran.stderr


def test_every_kind_refused_is_named_with_its_package_entry_point_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(REFUSED))
    refused = Distribution.at(REFUSED / "acme_refused-0.1.dist-info")
    with pytest.raises(KindPluginError) as raised:
        read_custom_kinds(refused.entry_points)
    head, _, rest = str(raised.value).partition(": ")
    assert head == "custom node kinds refused (braidflow.nodes entry points)"
    assert rest.split("; ") == [
        "package 'acme-refused' (chant = acme_refused:CHANT): kind 'chant': templated names"
        " params its schema's properties lack: words",
        "package 'acme-refused' (gone = acme_refused_gone:GONE): cannot load:"
        " ModuleNotFoundError: No module named 'acme_refused_gone'",
        "package 'acme-refused' (http = acme_refused:HTTP): kind 'http' clashes with a built-in"
        " kind",
        "package 'acme-refused' (hum = acme_refused:HUM): kind 'hum': bad params schema: it must"
        ' describe an object ("type": "object")',
        "package 'acme-refused' (mumble = acme_refused:MUMBLE): kind 'mumble': run must be an"
        " async function",
        "package 'acme-refused' (shout = acme_refused:SHOUT): kind 'shout': bad params schema:"
        " invalid JSON Schema at required: 3 is not of type 'array'",
        "package 'acme-refused' (sing = acme_refused:CHANT): the entry point must be named after"
        " its kind 'chant'",
        "package 'acme-refused' (whisper = acme_refused:NOT_A_KIND): names a dict, not a"
        " braidflow.CustomKind",
    ]


@pytest.fixture
def greeting_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[Distribution]:
    """The greeting package's distribution, its module importable."""
    monkeypatch.syspath_prepend(str(GREETING))
    yield Distribution.at(GREETING / "acme_greeting-1.0.dist-info")


def test_a_kind_two_packages_register_is_refused_naming_both(
    greeting_package: Distribution,
) -> None:
    (greet,) = read_custom_kinds(greeting_package.entry_points)
    assert (greet.name, greet.templated) == ("greet", ("name",))
    twice = [*greeting_package.entry_points, *greeting_package.entry_points]
    with pytest.raises(KindPluginError) as refused:
        read_custom_kinds(twice)
    assert str(refused.value).endswith(
        "package 'acme-greeting' (greet = acme_greeting:GREET): kind 'greet' clashes with the"
        " one of package 'acme-greeting' (greet = acme_greeting:GREET)"
    )


async def test_an_executor_runs_a_package_s_kind_with_a_task_s_context(
    greeting_package: Distribution,
) -> None:
    (greet,) = read_custom_kinds(greeting_package.entry_points)
    delivered: list[Transition] = []

    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        delivered.append(transition)

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(letter)

    class NoHttp:
        async def call(self, *args: Any) -> dict[str, Any]:
            raise AssertionError("no http node here")

    executor = Executor(
        Settings(), TaskRegistry(), NoHttp(), send, dead_letter, lambda: 1,
        kinds={"greet": custom_kind_run(greet)},
    )  # fmt: skip
    for n, name in enumerate(["Ada", "nobody"]):
        params = {"name": name, "salutation": "Good morning"}
        request = TaskRequest("ex", "wf", f"n{n}", "greet", 1, f"ex:n{n}:1", 1, params, None, 2000)
        await executor._run_and_deliver(request)

    greeted, nobody = delivered
    assert isinstance(greeted, NodeCompleted)
    assert greeted.output == {
        "greeting": "Good morning, Ada!",
        "idempotency_key": "ex:n0:1",
        "timeout_ms": 2000,
    }
    assert isinstance(nobody, NodeFailed)
    assert (nobody.error.type, nobody.error.message) == ("NoOneToGreet", "there is nobody to greet")


def test_the_lists_of_kinds_are_views_of_the_registered_ones_giving_frozensets() -> None:
    waits = KindNames(lambda spec: spec.family == "wait")
    assert waits == WAIT_TYPES == {"approval", "delay", "subworkflow", "wait_event"}
    assert "greet" not in waits and 3 not in waits
    ending = NODE_TYPES - BRANCHING_TYPES
    assert isinstance(ending, frozenset) and "end" in ending and "decision" not in ending
    assert TEMPLATED_PARAMS["task"] == ("input",)
    assert "decision" not in TEMPLATED_PARAMS
