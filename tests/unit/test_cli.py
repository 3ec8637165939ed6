"""The `braidflow` command line: schema, validate, inspect, dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from braidflow.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "new-hire-approval.yaml"

BAD = """\
id: wf
nodes:
  - {id: start, type: task, params: {handler: h.start, retries: 3}}
  - {id: done, type: end}
edges:
  - {from: start, to: done}
  - {from: start, to: ghost}
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_validate_a_good_file_prints_ok(tmp_path: Path) -> None:
    assert invoke("validate", str(EXAMPLE)) == (0, "ok\n")


def test_validate_a_bad_file_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, output = invoke("validate", str(bad))
    assert code == 1
    assert output.splitlines() == [
        f"{bad}: node 'start': params: Additional properties are not allowed"
        " ('retries' was unexpected)",
        f"{bad}: edge 'start -> ghost': to: 'ghost' is not a node",
    ]


def test_validate_warns_of_an_approver_that_reads_as_a_role_and_still_passes(
    tmp_path: Path,
) -> None:
    signed = tmp_path / "signed.yaml"
    signed.write_text(
        "id: wf\nnodes:\n  - {id: ask, type: approval, params: {approvers: [admin]}}\n"
        "  - {id: done, type: end}\nedges:\n  - {from: ask, to: done}\n"
    )
    code, output = invoke("validate", str(signed))
    assert code == 0
    assert output.splitlines() == [
        f"{signed}: warning: node 'ask': params.approvers: 'admin' is not a role, so only a"
        " principal named 'admin' may decide; did you mean the role 'owner'? (roles: viewer,"
        " operator, editor, owner, each covering those before it)",
        "ok",
    ]


def test_validate_several_files_reports_each(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, output = invoke("validate", str(EXAMPLE), str(bad))
    assert code == 1
    assert output.splitlines()[0] == f"{EXAMPLE}: ok"
    assert all(line.startswith(f"{bad}: ") for line in output.splitlines()[1:])

    assert invoke("validate", str(EXAMPLE), str(EXAMPLE)) == (
        0,
        f"{EXAMPLE}: ok\n{EXAMPLE}: ok\n",
    )


def test_validate_an_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    code, output = invoke("validate", str(missing), str(tmp_path))
    assert code == 1
    assert output.splitlines() == [
        f"{missing}: file: cannot read: No such file or directory",
        f"{tmp_path}: file: cannot read: Is a directory",
    ]


def test_validate_a_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "wf",\n "nodes": [,]}')
    code, output = invoke("validate", str(broken))
    assert (code, output) == (1, f"{broken}: line 2, column 12: invalid JSON: Expecting value\n")


def test_inspect_prints_the_analysis_and_a_flowchart() -> None:
    code, output = invoke("inspect", str(EXAMPLE))
    assert code == 0
    analysis, flowchart = output.split("\n\n")
    assert analysis.splitlines() == [
        "workflow: new-hire-approval (New hire approval)",
        "roots: ask_all",
        "branch points: ask_all, approved",
        "convergence points: all_answers",
        "leaves: proceed, reject",
        "parallel groups:",
        "  ask_all: 3 branches, converge at all_answers",
        "    branch 1: it",
        "    branch 2: hr",
        "    branch 3: manager",
        "topological order: ask_all, it, hr, manager, all_answers, approved, proceed, reject",
    ]
    lines = flowchart.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    ask_all[["ask_all"]]' in lines
    assert '    it["it (http)"]' in lines
    assert '    approved{"approved"}' in lines
    assert '    proceed(["proceed"])' in lines
    for edge in ["ask_all --> it", "hr --> all_answers", "all_answers --> approved"]:
        assert f"    {edge}" in lines
    assert "    approved -->|default| reject" in lines
    assert (
        '    approved -->|"nodes.it.output.body.ok && nodes.hr.output.ok'
        ' && nodes.manager.output.ok"| proceed'
    ) in lines


def test_inspect_an_invalid_file_prints_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = CliRunner().invoke(main, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{bad}: edge 'start -> ghost': to: 'ghost' is not a node" in result.stderr


def test_schema_prints_a_valid_json_schema() -> None:
    code, output = invoke("schema")
    assert code == 0
    schema = json.loads(output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["id", "nodes", "edges"]


def test_a_dry_run_shows_the_end_running_in_the_step_of_the_last_answer(tmp_path: Path) -> None:
    chain = tmp_path / "chain.yaml"
    chain.write_text(
        "id: chain\n"
        "nodes:\n"
        "  - {id: call, type: task, params: {handler: h.call}}\n"
        "  - {id: done, type: end, params: {output: {got: '${nodes.call.output}'}}}\n"
        "edges:\n"
        "  - {from: call, to: done}\n"
    )
    code, printed = invoke("dry-run", str(chain), "--input", "{}")
    assert code == 0, printed
    steps = printed.splitlines()[1:-3]
    assert steps[-2:] == ["  2  call answered null", "       workflow.completed (end done)"]
    assert "path: call -> done" in printed
