"""Every docs page holds up: the files it names exist, its links resolve, the benches it runs
take the options it shows, its workflow definitions load, and the reference pages cover every
setting, command and node kind. Where the code sends a reader (`docs/….md#anchor`, or a quoted
section title) leads to a heading.

A YAML block in the docs is a whole workflow definition that must load and validate, unless
its fence line says otherwise: ```` ```yaml fragment ```` (a part of one: a node, the
triggers; it must still parse) or ```` ```yaml invalid ```` (a definition shown for the
problems `braidflow validate` finds in it; it must fail to load).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from braidflow.cli import main
from braidflow.config import setting_sources
from braidflow.connectors.demo_services import DEMO_URL
from braidflow.dev import DEPARTMENT_FILE, _example_files, _sample_input
from braidflow.dev_banner import DEFAULT_API, ready_banner
from braidflow.engine.state import ExecutionStatus, NodeStatus
from braidflow.topology import load_workflow
from braidflow.topology.departments import declares_department, load_department
from braidflow.topology.loading import DefinitionError

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)\s*([\w-]*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A repository path a page names: `examples/fan-out.yaml`, `docs/kafka/msk-scram.properties`,
# `streams/value_rows.py` (under braidflow/), `braidflow/schemas/avro/`.
NAMED_PATH = re.compile(
    r"(?<![\w./<-])((?:examples|docs|tests|bench|braidflow|streams|connectors|topology|engine|"
    r"schemas|runtime)/[\w./-]*(?:\.(?:yaml|json|py|md|properties|avsc|yml)|/))(?![\w<*])"
)


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced code block: where it opens, its language tag, its marker, its text."""

    where: str
    tag: str
    marker: str
    text: str


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    opened: tuple[str, str, str, str, int] | None = None
    lines: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if opened is None and fence:
            indent = line[: len(line) - len(line.lstrip())]
            opened = (fence.group(1), fence.group(2), fence.group(3), indent, number)
            lines = []
        elif opened is not None and fence and fence.group(1) == opened[0]:
            where = (
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{opened[4]}"
            )
            text = "\n".join(line.removeprefix(opened[3]) for line in lines)
            found.append(Block(where, opened[1].lower(), opened[2].lower(), text))
            opened = None
        elif opened is not None:
            lines.append(line)
    return found


def yaml_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.tag in ("yaml", "yml")]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    # A `#` comment in a code block is no heading.
    text = _outside_code(path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _outside_code(text: str) -> str:
    kept, fence = [], None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if opened and (fence is None or opened.group(1) == fence):
            fence = opened.group(1) if fence is None else None
            continue
        if fence is None:
            kept.append(line)
    return "\n".join(kept)


def link_problems(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(_outside_code(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            problems.append(f"{page.name}: link to a missing file: {target}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{page.name}: no heading for the anchor: {target}")
    return problems


def named_path_problems(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    problems = []
    for named in sorted(set(NAMED_PATH.findall(text))):
        if not ((ROOT / named).exists() or (ROOT / "braidflow" / named).exists()):
            problems.append(f"{page.name}: names a file that does not exist: {named}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_page_resolves(page: Path) -> None:
    assert link_problems(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_exists(page: Path) -> None:
    assert named_path_problems(page) == []


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: b.where)
def test_every_yaml_block_is_a_definition_that_loads_or_is_marked(block: Block) -> None:
    if block.marker == "fragment":
        assert yaml.safe_load(block.text) is not None
    elif block.marker == "invalid":
        with pytest.raises(DefinitionError):
            load_workflow(block.text)
    elif declares_department(yaml.safe_load(block.text)):
        assert block.marker == "", f"unknown marker {block.marker!r}"
        assert load_department(block.text).name
    else:
        assert block.marker == "", f"unknown marker {block.marker!r}"
        assert load_workflow(block.text).id


def test_the_format_reference_shows_definitions_that_load_and_one_that_does_not() -> None:
    shown = [b for b in blocks(DOCS / "format.md") if b.tag == "yaml"]
    assert sum(b.marker == "" for b in shown) >= 2
    assert any(b.marker == "invalid" for b in shown)


def test_the_settings_table_lists_every_variable_and_option_of_the_settings() -> None:
    page = (DOCS / "operations.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(BRAIDFLOW_\w+)` \| `(--[\w-]+)` \|", page, re.MULTILINE))
    assert rows == {(s.env, s.option) for s in setting_sources()}


def test_the_command_line_page_shows_every_command() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    shown = set()
    for words in re.findall(r"^braidflow ([\w|-]+)", page, re.MULTILINE):
        shown.update(words.split("|"))
    assert shown == set(main.commands)


def test_the_front_page_and_the_index_link_every_page() -> None:
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    front = set(re.findall(r"\]\(docs/([\w-]+\.md)", (ROOT / "README.md").read_text()))
    index = set(re.findall(r"\]\(([\w-]+\.md)", (DOCS / "README.md").read_text()))
    assert pages <= front
    assert pages <= index


# `docs/performance.md#runtime` in a bench's help, `(docs/performance.md, "Stats")` in a comment:
# where the code and the pages send a reader. A quoted title names the start of a heading or of
# a paragraph's bold lead (`- **Tasks run where they are orchestrated.**`), and may wrap onto a
# comment's next line.
DOCS_ANCHOR = re.compile(r"(docs/[\w/-]+\.md)#([\w-]+)")
DOCS_SECTION = re.compile(r'(docs/[\w/-]+\.md),\s*(?:#\s*)?"([^"]+)"')
REFERRING = ["braidflow/**/*.py", "bench/**/*.py", "tests/**/*.py", "README.md", "docs/**/*.md"]


def titles(path: Path) -> list[str]:
    """A page's headings and bold leads, as a quoted reference names them."""
    text = _outside_code(path.read_text(encoding="utf-8"))
    found = re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)
    found += re.findall(r"^\s*(?:- )?\*\*(.+?)\*\*", text, re.MULTILINE)
    return [title.replace("`", "") for title in found]


def reference_problems(where: str, text: str, root: Path = ROOT) -> list[str]:
    """The `docs/….md#anchor` and `docs/….md, "Heading"` in `text` that lead nowhere."""
    problems = []
    for page, anchor in DOCS_ANCHOR.findall(text):
        if not (root / page).exists():
            problems.append(f"{where}: no such page: {page}#{anchor}")
        elif anchor not in anchors(root / page):
            problems.append(f"{where}: no heading for the anchor: {page}#{anchor}")
    for page, title in DOCS_SECTION.findall(text):
        title = re.sub(r"\s*\n\s*#?\s*", " ", title).replace("`", "")
        if not (root / page).exists():
            problems.append(f'{where}: no such page: {page}, "{title}"')
        elif not any(shown.startswith(title) for shown in titles(root / page)):
            problems.append(f'{where}: no heading or bold lead starts with: {page}, "{title}"')
    return problems


def test_every_docs_anchor_and_section_the_code_and_pages_name_resolves() -> None:
    files = sorted({f for pattern in REFERRING for f in ROOT.glob(pattern)})
    assert len(files) > 100
    problems = [
        problem
        for f in files
        for problem in reference_problems(
            str(f.relative_to(ROOT)), f.read_text(encoding="utf-8", errors="replace")
        )
    ]
    assert problems == []


# A bench run a page shows: `.venv/bin/python bench/runtime_bench.py --chain-only`, or
# `make bench-peer ARGS='--rounds 3'`; its options up to a comment or a shell operator.
BENCH_RUN = re.compile(r"bench/(\w+)\.py([^#|;&\n]*)")
MAKE_ARGS = re.compile(r"make (bench[\w-]*) ARGS='([^']*)'")


def bench_options(script: str, root: Path = ROOT) -> set[str]:
    """The options a bench script takes: its own and those of the bench modules it imports."""
    source = (root / "bench" / f"{script}.py").read_text(encoding="utf-8")
    found = {"--help", *re.findall(r'"(--[a-z][\w-]*)"', source)}
    for imported in re.findall(r"^from (\w+) import", source, re.MULTILINE):
        if (root / "bench" / f"{imported}.py").exists():
            found |= bench_options(imported, root)
    return found


def bench_runs(page: Path) -> list[tuple[str, str]]:
    """(script, options) of each bench run the page shows as code, `make bench-*` by its recipe."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipes = dict(re.findall(r"^(bench[\w-]*):.*\n\t.*bench/(\w+)\.py", makefile, re.MULTILINE))
    text = _outside_code(page.read_text(encoding="utf-8"))
    code = [span for part in text.split("\n\n") for span in re.findall(r"`([^`]+)`", part)]
    code += [line for block in blocks(page) for line in block.text.splitlines()]
    runs = [run for span in code for run in BENCH_RUN.findall(span.replace("\n", " "))]
    runs += [(recipes[t], args) for span in code for t, args in MAKE_ARGS.findall(span)]
    return runs


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bench_run_a_page_shows_has_only_options_its_bench_takes(page: Path) -> None:
    unknown = [
        f"bench/{script}.py {option}"
        for script, args in bench_runs(page)
        for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", args)
        if option not in bench_options(script)
    ]
    assert unknown == []


def test_the_performance_page_shows_bench_runs_with_options() -> None:
    shown = {script for script, args in bench_runs(DOCS / "performance.md") if "--" in args}
    assert {"runtime_bench", "peer_celery", "scale_bench", "delay_bench"} <= shown


# -- the checks themselves, on made-up pages


def test_a_missing_file_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n[a](gone.md) [b](page.md#nowhere) [c](#top) [d](https://x.org)\n")
    assert link_problems(page) == [
        "page.md: link to a missing file: gone.md",
        "page.md: no heading for the anchor: page.md#nowhere",
    ]


def test_a_reference_to_a_missing_anchor_or_section_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = "# Top\n\n## The chain, per hop (a date)\n\n- **Tasks run here.** Why.\n"
    (tmp_path / "docs" / "page.md").write_text(page)
    d = "docs"  # spelled apart, so that this file's own text refers to no page
    text = (
        f'{d}/page.md#top {d}/page.md#gone {d}/gone.md#top ({d}/page.md, "The chain,\n'
        f'# per hop") ({d}/page.md, "Tasks run here") ({d}/page.md,\n"The chain: per hop")'
    )
    assert reference_problems("x.py", text, tmp_path) == [
        f"x.py: no heading for the anchor: {d}/page.md#gone",
        f"x.py: no such page: {d}/gone.md#top",
        f'x.py: no heading or bold lead starts with: {d}/page.md, "The chain: per hop"',
    ]


def test_an_option_a_bench_lacks_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `python bench/runtime_bench.py --chain-only --chanis 3` or\n"
        "```sh\nmake bench-peer ARGS='--rounds 3'  # not --nope\n```\n"
    )
    runs = bench_runs(page)
    assert runs == [("runtime_bench", " --chain-only --chanis 3"), ("peer_celery", "--rounds 3")]
    assert "--chanis" not in bench_options("runtime_bench")
    assert {"--rounds", "--broker"} <= bench_options("peer_celery")


def test_a_named_path_that_does_not_exist_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Run `examples/fan-out.yaml`, not `examples/fan-in.yaml` or examples/*.yaml.\n")
    assert named_path_problems(page) == [
        "page.md: names a file that does not exist: examples/fan-in.yaml"
    ]


def test_slugs_follow_github() -> None:
    assert (
        slug("Secured and managed clusters (TLS, SASL)") == "secured-and-managed-clusters-tls-sasl"
    )
    assert slug("`wait_event`") == "wait_event"


def _shown_banner(page: Path) -> list[str]:
    block = next(b for b in blocks(page) if b.text.startswith("braidflow is ready."))
    return block.text.splitlines()


# The owner key the pages show in the banner (each dev session makes its own).
SHOWN_KEY = "bfk_5e1f0c9a2b7d_q8Vw3nK0xY2Lr7TbZc4HsJm9pQeUa6fGd1oWi5Nk2Ex"


def _banner_of_the_examples() -> list[str]:
    deployed = [
        (load_workflow(path.read_text(encoding="utf-8")).id, _sample_input(path))
        for path in _example_files(ROOT / "examples")
        if path.name != DEPARTMENT_FILE
    ]
    cli = "/home/ada/braidflow/.venv/bin/braidflow"
    key_file = Path("/home/ada/.config/braidflow/dev-api-key")
    banner = ready_banner(
        DEFAULT_API, "127.0.0.1:9092", deployed, cli, SHOWN_KEY, key_file, DEMO_URL
    )
    return banner.strip("\n").splitlines()


def test_the_ready_banner_the_dev_mode_section_shows_is_what_make_run_prints() -> None:
    assert _shown_banner(DOCS / "operations.md") == _banner_of_the_examples()


def test_the_front_page_shows_lines_of_that_banner() -> None:
    printed = _banner_of_the_examples()
    assert [line for line in _shown_banner(ROOT / "README.md") if line not in printed] == []


def make_targets_shown(page: Path) -> set[str]:
    """The `make X` a page shows as code: in inline code and in code blocks, not in prose."""
    code = re.findall(r"`([^`\n]+)`", _outside_code(page.read_text(encoding="utf-8")))
    code += [block.text for block in blocks(page)]
    return {t for text in code for t in re.findall(r"(?<![\w-])make ([a-z][\w-]*)", text)}


def test_every_make_target_the_docs_show_is_in_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    shown = {target for page in PAGES for target in make_targets_shown(page)}
    assert {"run", "test", "bench-runtime", "bench-events"} <= shown
    assert shown - targets == set()


def test_make_in_prose_is_no_target(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("To make the suite pass, run `make test`.\n\n```sh\nmake bench # now\n```\n")
    assert make_targets_shown(page) == {"test", "bench"}


def test_the_quick_start_is_the_two_commands_and_ci_runs_the_second() -> None:
    quick_start = next(b for b in blocks(ROOT / "README.md") if b.tag == "sh")
    assert [line.split("#")[0].strip() for line in quick_start.text.splitlines()] == [
        "make run",
        "make test",
    ]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_concepts_name_every_status() -> None:
    page = (DOCS / "concepts.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(\w+)`", page))
    assert {s.value for s in ExecutionStatus} | {s.value for s in NodeStatus} <= named
