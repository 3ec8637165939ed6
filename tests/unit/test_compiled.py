"""The hot modules run compiled all together or not at all, never from a stale build, and
compiled wherever the install had a C compiler to build them with."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from braidflow import compiled
from braidflow.compiled import MANIFEST, MODULES, how_it_runs, source_hashes, source_path


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the compiled modules' sources, as a package directory of its own."""
    for module in MODULES:
        copy = source_path(module, tmp_path)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_path(module), copy)
    return tmp_path


def _build(package: Path, hashes: dict[str, str]) -> None:
    (package / MANIFEST).write_text(json.dumps(hashes))


def test_every_listed_module_is_a_source_of_the_package() -> None:
    assert len(set(MODULES)) == len(MODULES)
    for module in MODULES:
        assert module.startswith("braidflow.")
        assert source_path(module).is_file(), module


def test_a_build_of_these_very_sources_runs_compiled(package: Path) -> None:
    _build(package, source_hashes(MODULES, package))
    build = how_it_runs({}, package)
    assert build.compiled and not build.stale
    assert build.reason == f"compiled by mypyc: {len(MODULES)} modules"


def test_without_a_build_the_modules_run_as_python_and_nothing_is_stale(package: Path) -> None:
    build = how_it_runs({}, package)
    assert not build.compiled and not build.stale
    assert build.reason == "pure Python: not compiled at install (docs/install.md)"


def test_one_edited_module_sends_the_whole_group_to_python_and_is_named(package: Path) -> None:
    _build(package, source_hashes(MODULES, package))
    edited = source_path("braidflow.engine.nodes.join", package)
    edited.write_text(edited.read_text() + "\n# edited\n")
    build = how_it_runs({}, package)
    assert not build.compiled and build.stale
    assert build.reason == "pure Python: braidflow.engine.nodes.join changed since it was compiled"
    source_path("braidflow.engine.step", package).write_text("")
    assert "braidflow.engine.step (and 1 more) changed" in how_it_runs({}, package).reason


def test_a_build_of_another_list_of_modules_is_stale(package: Path) -> None:
    _build(package, source_hashes(MODULES[:-1], package))
    build = how_it_runs({}, package)
    assert not build.compiled and build.stale


@pytest.mark.parametrize("value", ["1", "yes"])
def test_braidflow_pure_wins_over_a_fresh_build(package: Path, value: str) -> None:
    _build(package, source_hashes(MODULES, package))
    build = how_it_runs({"BRAIDFLOW_PURE": value}, package)
    assert not build.compiled and not build.stale
    assert build.reason == "pure Python: BRAIDFLOW_PURE is set"
    assert how_it_runs({"BRAIDFLOW_PURE": "0"}, package).compiled


def test_this_process_runs_every_module_the_way_it_chose() -> None:
    build = compiled.choose()
    for module in MODULES:
        loaded = importlib.import_module(module)
        assert loaded.__file__ is not None
        from_source = loaded.__file__.endswith(".py")
        assert from_source is not build.compiled, (module, loaded.__file__, build.reason)
    assert ("braidflow._compiled__mypyc" in sys.modules) is build.compiled


def test_an_install_with_a_c_compiler_runs_compiled() -> None:
    """`make install` compiles wherever gcc and Python's headers are, as on CI's machines."""
    build = compiled.choose()
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    if os.environ.get("BRAIDFLOW_PURE", "") not in ("", "0"):
        assert build.reason == "pure Python: BRAIDFLOW_PURE is set"
    elif os.environ.get("BRAIDFLOW_COMPILE") == "0" or not (
        shutil.which(compiler) and headers.is_file()
    ):
        assert not build.compiled, build.reason
    else:
        assert build.compiled, build.reason


def test_a_worker_says_why_its_modules_run_as_python_and_nothing_when_compiled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from braidflow.cli import _say_if_pure

    _say_if_pure()
    said = capsys.readouterr().err
    build = compiled.choose()
    if build.compiled:
        assert said == ""
    else:
        assert said == f"braidflow: the engine and its codecs run {build.reason}\n"
