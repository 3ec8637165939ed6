"""A start of `braidflow dev` or of a worker imports no library of a feature it was not asked
for: the CEL package's interactive shell, the OpenTelemetry SDK without OTEL_* variables,
psycopg without a PostgreSQL read model, PyJWT without an identity provider. Each took a
tenth of a second or more of every start (docs/performance-history.md, "Dev mode ready")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

NOT_AT_START = ("cel.cli", "prompt_toolkit", "typer", "opentelemetry.sdk", "psycopg", "jwt")


def modules_after(code: str) -> set[str]:
    """The modules loaded once `code` has run in a fresh interpreter (no OTEL_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BRAIDFLOW_"))}
    shown = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    ran = subprocess.run(
        [sys.executable, "-c", shown], capture_output=True, text=True, env=env, check=True
    )
    return set(json.loads(ran.stdout.splitlines()[-1]))


def test_the_command_line_dev_mode_and_the_worker_import_no_feature_left_off() -> None:
    loaded = modules_after("import braidflow.cli, braidflow.dev, braidflow.runtime")
    unwanted = {m for m in loaded for n in NOT_AT_START if m == n or m.startswith(f"{n}.")}
    assert unwanted == set()


def test_cel_expressions_work_without_the_shell_which_still_imports_when_asked() -> None:
    loaded = modules_after(
        "from braidflow.topology.expressions import compile_expression\n"
        "assert compile_expression('input.n > 1').evaluate({'input': {'n': 2}}) is True\n"
        "import cel.cli\n"
        "assert hasattr(cel.cli, 'app'), 'the real shell module'"
    )
    assert "prompt_toolkit" in loaded
