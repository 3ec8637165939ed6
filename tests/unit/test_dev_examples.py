"""What `braidflow dev` deploys from an examples directory, and the helpdesk credential it
gives the support example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from braidflow.connectors.demo_services import HELPDESK_TOKEN_ENV
from braidflow.dev import _example_files, _helpdesk_token


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
