"""The ready banner of `braidflow dev` prints commands that work as shown."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

import pytest

from braidflow.dev_banner import cli_command, ready_banner

PYTHON = "/opt/py/bin/python3.11"


def _script(directory: Path) -> Path:
    script = directory / "braidflow"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_running_program_is_named_when_braidflow_on_the_path_is_not_it(tmp_path: Path) -> None:
    venv = _script(tmp_path)
    # `make run` starts .venv/bin/braidflow, and nothing (or another one) is on the PATH.
    assert cli_command(str(venv), PYTHON, None) == str(venv)
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert cli_command(str(venv), PYTHON, str(_script(other))) == str(venv)


def test_a_relative_start_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another terminal does not start in the directory `make run` ran in.
    venv = _script(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli_command("./braidflow", PYTHON, None) == str(venv)


def test_plain_braidflow_when_the_path_finds_the_running_program(tmp_path: Path) -> None:
    venv = _script(tmp_path)
    assert cli_command(str(venv), PYTHON, str(venv)) == "braidflow"


def test_started_as_a_module_the_banner_says_python_dash_m() -> None:
    assert cli_command("/src/braidflow/cli.py", PYTHON, None) == f"{PYTHON} -m braidflow.cli"


def _line(banner: str, start: str) -> list[str]:
    """The banner's command line beginning with `start`, split as a shell would."""
    lines = [line.strip() for line in banner.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, banner
    return shlex.split(lines[0])


def test_the_run_command_names_the_program_the_api_and_an_input_the_shell_keeps() -> None:
    sample = {"who": "O'Brien", "weight_grams": 1800}
    cli = "/home/ada/braidflow/.venv/bin/braidflow"
    banner = ready_banner(
        "http://127.0.0.1:8082", "127.0.0.1:9092", [("order-chain", {}), ("fan-out", sample)], cli
    )
    words = _line(banner, f"{cli} run")
    assert words[:3] == [cli, "run", "fan-out"]
    assert json.loads(words[words.index("--input") + 1]) == sample
    assert words[words.index("--api") + 1] == "http://127.0.0.1:8082"
    assert "--wait" in words


def test_commands_on_the_default_api_need_no_api_option() -> None:
    banner = ready_banner(
        "http://127.0.0.1:8080", "127.0.0.1:9092", [("ticket-escalation", {})], "braidflow"
    )
    assert "--api" not in banner
    words = _line(banner, "braidflow publish")
    assert words[:3] == ["braidflow", "publish", "ticket.opened"]
    assert json.loads(words[words.index("--data") + 1]) == {"ticket_id": "T-1", "priority": "high"}


def test_the_publish_command_names_the_api_when_it_moved() -> None:
    banner = ready_banner(
        "http://127.0.0.1:9000", "127.0.0.1:9092", [("ticket-escalation", {})], "bf"
    )
    words = _line(banner, "bf publish")
    assert words[words.index("--api") + 1] == "http://127.0.0.1:9000"


def test_the_banner_says_where_things_are_and_what_was_deployed() -> None:
    banner = ready_banner("http://127.0.0.1:8082", "127.0.0.1:41234", [("fan-out", {})], "bf")
    assert "API: http://127.0.0.1:8082/api/v1  broker: 127.0.0.1:41234" in banner
    assert "deployed: fan-out" in banner
    assert ready_banner("http://127.0.0.1:8080", "b:1", [], "bf").count("deployed: (none)") == 1


def test_the_banner_gives_the_dashboard_address_and_what_to_sign_in_with() -> None:
    signed = ready_banner("http://127.0.0.1:8082", "b:1", [], "bf", key="bfk_x_y")
    assert "dashboard: http://127.0.0.1:8082/  (sign in with the owner API key below)" in signed
    open_ = ready_banner("http://127.0.0.1:8082", "b:1", [], "bf")
    assert [line for line in open_.splitlines() if "dashboard" in line] == [
        "dashboard: http://127.0.0.1:8082/"
    ]
