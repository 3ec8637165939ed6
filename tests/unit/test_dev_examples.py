"""What `braidflow dev` deploys from an examples directory, and the helpdesk credential it
gives the support example."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from braidflow import dev
from braidflow.connectors.connections import Connection, SmtpConnection, parse_connections
from braidflow.connectors.demo_services import HELPDESK_TOKEN_ENV
from braidflow.dev import (
    _example_batches,
    _example_files,
    _helpdesk_token,
    _memory_dir,
    dev_connections,
)


def test_a_department_is_deployed_before_its_workflows_after_the_top_level(
    tmp_path: Path,
) -> None:
    for name in ("b.yaml", "b.answers.yaml", "support/department.yaml", "support/a.yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "support" / "a.answers.yaml").write_text("")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "c.yaml").write_text("")  # no department.yaml: not deployed
    assert [str(p.relative_to(tmp_path)) for p in _example_files(tmp_path)] == [
        "b.yaml",
        "support/department.yaml",
        "support/a.yaml",
    ]


def test_examples_deploy_at_once_in_batches_a_department_alone_before_its_workflows(
    tmp_path: Path,
) -> None:
    for name in ("b.yaml", "a.yaml", "support/department.yaml", "support/c.yaml", "support/d.yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    batches = [[str(p.relative_to(tmp_path)) for p in b] for b in _example_batches(tmp_path)]
    assert batches == [
        ["a.yaml", "b.yaml"],
        ["support/department.yaml"],
        ["support/c.yaml", "support/d.yaml"],
    ]


def test_a_dev_sessions_local_state_is_kept_in_memory_when_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dev, "MEMORY_DIR", tmp_path)
    monkeypatch.setattr(dev, "MEMORY_DIR_MIN_FREE", 1)
    assert _memory_dir() == tmp_path
    # A container's small /dev/shm, or none at all: the system's temporary directory.
    monkeypatch.setattr(dev, "MEMORY_DIR_MIN_FREE", 1 << 60)
    assert _memory_dir() is None
    monkeypatch.setattr(dev, "MEMORY_DIR", tmp_path / "absent")
    monkeypatch.setattr(dev, "MEMORY_DIR_MIN_FREE", 1)
    assert _memory_dir() is None


def test_dev_keeps_a_helpdesk_credential_the_worker_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HELPDESK_TOKEN_ENV, "given")
    assert _helpdesk_token() == "given"


def test_dev_makes_a_helpdesk_credential_the_secrets_provider_then_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HELPDESK_TOKEN_ENV, "")  # so the test's end takes the value away
    monkeypatch.delenv(HELPDESK_TOKEN_ENV)
    token = _helpdesk_token()
    assert len(token) >= 24
    assert _helpdesk_token() == token
    assert os.environ[HELPDESK_TOKEN_ENV] == token


def test_dev_connections_are_the_demo_stand_ins_under_the_users_own_by_name(
    tmp_path: Path,
) -> None:
    demo = "http://127.0.0.1:8090"
    assert parse_connections(dev_connections(None, demo, 2525), "dev") == {
        "model": Connection("model", "http://127.0.0.1:8090/v1"),
        "mail": SmtpConnection("mail", "127.0.0.1", 2525),
    }
    own = tmp_path / "connections.yaml"
    own.write_text(
        "model:\n  url: https://api.openai.com/v1\n  key: ${secrets.OPENAI_API_KEY}\n"
        "ollama:\n  url: http://127.0.0.1:11434/v1\n"
    )
    merged = parse_connections(dev_connections(own, demo, 2525), "dev")
    assert merged["model"] == Connection(
        "model", "https://api.openai.com/v1", "${secrets.OPENAI_API_KEY}"
    )
    assert merged["mail"] == SmtpConnection("mail", "127.0.0.1", 2525)
    assert set(merged) == {"model", "mail", "ollama"}


def test_dev_refuses_a_connections_file_of_the_users_naming_it_and_the_field(
    tmp_path: Path,
) -> None:
    own = tmp_path / "connections.yaml"
    own.write_text("model:\n  url: https://api.openai.com/v1\n  key: sk-written-out\n")
    with pytest.raises(click.ClickException, match=f"{own}: model.key: expected a secret"):
        dev_connections(own, "http://127.0.0.1:8090", 2525)
