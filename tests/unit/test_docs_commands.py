"""Every `braidflow …` command line the docs show names a command that exists, with only
options that command has.

The docs are README.md and docs/*.md. Command lines are taken from fenced code
blocks and from inline code. A block tagged sh/bash/shell/console (or untagged
and about commands) holds commands on every line; an untagged block that shows
output (the ready banner) holds commands only on indented or `$ `-prompted lines.
`cancel|pause|resume` names each of the three; `[--reason TEXT]` is the option --reason.
A command group's line is checked against its subcommand (`keys create --role R`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from braidflow.cli import main

ROOT = Path(__file__).parents[2]
SHELL_TAGS = frozenset({"sh", "bash", "shell", "console", "zsh"})
FENCE = re.compile(r"^(\s*)(```|~~~)\s*([\w+-]*)")
INLINE = re.compile(r"`([^`\n]+)`")
# `braidflow`, `.venv/bin/braidflow`, at the start of a command or after a prompt or operator.
COMMAND = re.compile(r"(?:^|(?<=[\s;&|(]))(?:[\w./-]*/)?braidflow(?=\s+[a-z])")
SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "2>&1"})


@dataclass(frozen=True, slots=True)
class Shown:
    """A command line as the docs show it: where, and the words after `braidflow`."""

    where: str
    text: str
    words: tuple[str, ...]


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unclosed quote in an abbreviated example
        return text.split("#", 1)[0].split()


def command_lines(markdown: str, name: str) -> list[Shown]:
    """The `braidflow …` command lines shown in `markdown`."""
    found: list[Shown] = []
    fence: str | None = None
    shell = False
    for number, line in enumerate(markdown.splitlines(), 1):
        where = f"{name}:{number}"
        opened = FENCE.match(line)
        if opened and (fence is None or opened.group(2) == fence):
            if fence is None:
                fence, tag = opened.group(2), opened.group(3).lower()
                shell = tag in SHELL_TAGS
                untagged = tag == ""
                if not shell and not untagged:
                    fence = fence + "skip"
            else:
                fence = None
            continue
        if fence is not None:
            if fence.endswith("skip"):
                continue
            body = line.strip()
            prompted = body.startswith("$ ")
            if not shell and not (prompted or line[:1].isspace()):
                continue  # output: `braidflow is ready. API: …`
            found.extend(_in(body.removeprefix("$ "), where))
        else:
            for span in INLINE.findall(line):
                found.extend(_in(span, where))
    return found


def _in(text: str, where: str) -> list[Shown]:
    shown = []
    for match in COMMAND.finditer(text):
        words = []
        for word in _words(text[match.end() :]):
            if word in SHELL_OPERATORS:
                break
            words.append(word)
        shown.append(Shown(where, text.strip(), tuple(words)))
    return shown


def _options(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def problems(shown: Shown, group: click.Group) -> list[str]:
    """What is wrong with one command line shown: unknown commands, unknown options."""
    if not shown.words:
        return []
    found = []
    commands = shown.words[0].split("|")
    given = {
        word.strip("[]()").split("=", 1)[0]
        for word in shown.words[1:]
        if re.fullmatch(r"\[?\(?--?[A-Za-z][\w-]*(=.*)?\]?\)?\]?", word)
    }
    for name in commands:
        command = group.commands.get(name)
        if command is None:
            found.append(f"{shown.where}: `braidflow {name}` is not a command: {shown.text}")
            continue
        if isinstance(command, click.Group):
            # `braidflow keys create|list ...`: the options are the subcommands'.
            found.extend(problems(Shown(shown.where, shown.text, shown.words[1:]), command))
            continue
        found.extend(
            f"{shown.where}: `braidflow {name}` has no option {option}: {shown.text}"
            for option in sorted(given - _options(command))
        )
    return found


def all_problems(root: Path = ROOT) -> list[str]:
    found = []
    for path in doc_files(root):
        if path.exists():
            for shown in command_lines(path.read_text(encoding="utf-8"), path.name):
                found.extend(problems(shown, main))
    return found


def test_every_command_line_in_the_docs_names_commands_and_options_that_exist() -> None:
    assert all_problems() == []


def test_the_docs_show_command_lines_at_all() -> None:
    shown = [
        s
        for path in doc_files()
        for s in command_lines(path.read_text(encoding="utf-8"), path.name)
    ]
    assert {s.words[0] for s in shown if s.words} >= {"dev", "run", "status", "approve"}
    assert {s.where.split(":")[0] for s in shown} >= {"README.md", "cli.md", "operations.md"}


# -- the checker itself, on made-up docs


def check(markdown: str) -> list[str]:
    return [p for s in command_lines(markdown, "doc.md") for p in problems(s, main)]


def test_an_option_a_command_lacks_is_found_in_each_command_of_an_alternation() -> None:
    doc = "```sh\nbraidflow cancel|pause EXECUTION_ID [--reason TEXT] [--colour C]\n```\n"
    assert check(doc) == [
        "doc.md:2: `braidflow cancel` has no option --colour:"
        " braidflow cancel|pause EXECUTION_ID [--reason TEXT] [--colour C]",
        "doc.md:2: `braidflow pause` has no option --colour:"
        " braidflow cancel|pause EXECUTION_ID [--reason TEXT] [--colour C]",
    ]


def test_an_unknown_command_in_inline_code_is_found() -> None:
    assert check("Run `braidflow lsit` to see them.") == [
        "doc.md:1: `braidflow lsit` is not a command: braidflow lsit"
    ]


@pytest.mark.parametrize(
    "doc",
    [
        "```\nbraidflow is ready. API: http://127.0.0.1:8080\n```\n",
        "```python\nbraidflow = lambda: 1\n```\n",
        "```sh\nbraidflow run w --input '{\"a\": 1}' | jq .  # --nope after the pipe\n```\n",
        "the package `braidflow` and `braidflow_tasks_run_total`",
        "```sh\n.venv/bin/braidflow run w --input=@in.json --wait\n```\n",
    ],
    ids=["output", "python", "pipe-and-comment", "not-a-command", "path-and-equals"],
)
def test_what_is_not_a_braidflow_command_line_or_is_right_passes(doc: str) -> None:
    assert check(doc) == []


def test_an_indented_command_in_an_output_block_is_checked() -> None:
    doc = "```\nbraidflow is ready.\ntry:\n  braidflow run w --wiat\n```\n"
    assert check(doc) == ["doc.md:4: `braidflow run` has no option --wiat: braidflow run w --wiat"]
