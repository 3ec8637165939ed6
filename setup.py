"""Builds braidflow, compiling its hottest pure modules with mypyc when it can (docs/install.md).

`BRAIDFLOW_COMPILE`: `auto` (the default) compiles when mypy type-checks the modules and a C
compiler builds them, and installs pure Python otherwise; `1` fails the install instead; `0`
never compiles. Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

MODE = os.environ.get("BRAIDFLOW_COMPILE", "auto")
if MODE not in ("auto", "0", "1"):
    sys.exit(f"BRAIDFLOW_COMPILE must be auto, 0 or 1, not {MODE!r}")
COMPILED = runpy.run_path(str(Path(__file__).parent / "braidflow" / "compiled.py"))
MODULES: tuple[str, ...] = COMPILED["MODULES"]


def _fallback(why: str) -> None:
    if MODE == "1":
        sys.exit(f"braidflow cannot be compiled ({why}) and BRAIDFLOW_COMPILE=1")
    print(f"braidflow installs as pure Python: {why}", file=sys.stderr)


def _extensions() -> list[Any]:
    if MODE == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _fallback("mypyc is not installed")
        return []
    try:
        return mypycify(
            [str(COMPILED["source_path"](m, Path("braidflow"))) for m in MODULES],
            group_name=COMPILED["GROUP"],
            opt_level="3",
        )
    except SystemExit as refused:
        # mypyc exits when mypy finds a type error in a module it is asked to compile.
        _fallback(f"mypy refused the modules ({refused.code})")
        return []


class CompiledOrPure(build_ext):
    """Builds every compiled module or none (they work only together), then records the
    sources they were built from, so a module edited later runs as Python, not stale."""

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as failed:
            if MODE == "1":
                raise
            for path in self.get_outputs():
                Path(path).unlink(missing_ok=True)
            # The compiler's own output, above, says what it lacked.
            _fallback(
                f"the C build failed ({type(failed).__name__}; the compiler's output is above)"
            )
            return
        package_dir = Path(self.get_ext_fullpath(COMPILED["GROUP"] + "__mypyc")).parent
        manifest = package_dir / COMPILED["MANIFEST"]
        hashes = COMPILED["source_hashes"](MODULES, Path("braidflow"))
        manifest.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        if self.extensions:
            group = Path(self.get_ext_fullpath(COMPILED["GROUP"] + "__mypyc")).parent
            outputs.append(str(group / COMPILED["MANIFEST"]))
        return outputs


setup(ext_modules=_extensions(), cmdclass={"build_ext": CompiledOrPure})
