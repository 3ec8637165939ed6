"""setup.py compiles the hot modules, or installs pure Python with the reason when it cannot
(`BRAIDFLOW_COMPILE=auto`), or fails (`1`). mypyc stands in for itself here: a `mypyc.build`
on PYTHONPATH hands the build a C extension of the test's choosing, so each way is quick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from braidflow.compiled import MANIFEST, MODULES, source_hashes

ROOT = Path(__file__).resolve().parents[2]

MODULE_C = """#include <Python.h>
static struct PyModuleDef compiled = {PyModuleDef_HEAD_INIT, "_compiled__mypyc", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__compiled__mypyc(void) { return PyModule_Create(&compiled); }
"""

MYPYC_BUILD = """from setuptools import Extension
def mypycify(paths, group_name, opt_level):
    assert group_name == "braidflow._compiled" and len(paths) == {count}
    return [Extension(group_name + "__mypyc", [{source!r}])]
"""


def _build(tmp_path: Path, mode: str, c_source: str | None) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake"
    (fake / "mypyc").mkdir(parents=True, exist_ok=True)
    (fake / "mypyc" / "__init__.py").write_text("")
    if c_source is not None:
        (tmp_path / "module.c").write_text(c_source)
        build = MYPYC_BUILD.format(count=len(MODULES), source=str(tmp_path / "module.c"))
        (fake / "mypyc" / "build.py").write_text(build)
    environ = {**os.environ, "PYTHONPATH": str(fake), "BRAIDFLOW_COMPILE": mode}
    places = ["--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "temp")]
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", *places],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _built(tmp_path: Path) -> list[str]:
    lib = tmp_path / "lib"
    return sorted(str(p.relative_to(lib)) for p in lib.rglob("*") if p.is_file())


def test_a_build_records_the_sources_it_compiled(tmp_path: Path) -> None:
    done = _build(tmp_path, "1", MODULE_C)
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "lib" / "braidflow" / MANIFEST
    assert json.loads(manifest.read_text()) == source_hashes(MODULES)
    assert any(name.startswith("braidflow/_compiled__mypyc") for name in _built(tmp_path))


def test_without_mypyc_auto_installs_pure_python_and_says_why(tmp_path: Path) -> None:
    done = _build(tmp_path, "auto", None)
    assert done.returncode == 0, done.stderr
    assert "braidflow installs as pure Python: mypyc is not installed" in done.stderr
    assert _built(tmp_path) == []


def test_a_failed_c_build_leaves_nothing_compiled_behind(tmp_path: Path) -> None:
    done = _build(tmp_path, "auto", MODULE_C + "this is not C;\n")
    assert done.returncode == 0, done.stderr
    assert "braidflow installs as pure Python: the C build failed" in done.stderr
    assert _built(tmp_path) == []


@pytest.mark.parametrize("c_source", [None, MODULE_C + "this is not C;\n"])
def test_compile_1_fails_the_install_instead(tmp_path: Path, c_source: str | None) -> None:
    done = _build(tmp_path, "1", c_source)
    assert done.returncode != 0
    assert _built(tmp_path) == []


def test_a_type_error_mypy_finds_installs_pure_python_and_says_so(tmp_path: Path) -> None:
    refusing = "def mypycify(paths, group_name, opt_level):\n    raise SystemExit(1)\n"
    (tmp_path / "fake" / "mypyc").mkdir(parents=True)
    (tmp_path / "fake" / "mypyc" / "build.py").write_text(refusing)
    done = _build(tmp_path, "auto", None)
    assert done.returncode == 0, done.stderr
    assert "braidflow installs as pure Python: mypy refused the modules (1)" in done.stderr
    assert _built(tmp_path) == []


def test_an_unknown_mode_is_refused_by_name(tmp_path: Path) -> None:
    done = _build(tmp_path, "yes", MODULE_C)
    assert done.returncode != 0
    assert "BRAIDFLOW_COMPILE must be auto, 0 or 1, not 'yes'" in done.stderr


def test_compile_0_builds_nothing(tmp_path: Path) -> None:
    done = _build(tmp_path, "0", MODULE_C)
    assert done.returncode == 0, done.stderr
    assert _built(tmp_path) == []
