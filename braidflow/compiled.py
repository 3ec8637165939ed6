"""Which of braidflow's modules ship compiled by mypyc, and when their Python runs instead.

The build (`setup.py`) compiles `MODULES` into one shared library inside the package when it
can, and records each source's hash in `_compiled.json` beside it. They run compiled only all
together: mypyc's classes are native across the group, so a compiled node kind cannot be given
an interpreted `Draft`. Every one of them runs as Python when `BRAIDFLOW_PURE=1` is set or when
any source changed since it was built, so an edited module is never shadowed by its old build.

Standard library only: `setup.py` reads `MODULES` from this file before braidflow is installed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

# The event loop's hottest pure modules (docs/performance.md, "Compiled modules").
MODULES: tuple[str, ...] = (
    "braidflow.schemas.avro_binary",
    "braidflow.schemas.stored_encoding",
    "braidflow.schemas.stored_reading",
    "braidflow.schemas.lifecycle_reading",
    "braidflow.schemas.lifecycle_writing",
    "braidflow.schemas.transition_coding",
    "braidflow.schemas.codec",
    "braidflow.schemas.framing",
    "braidflow.schemas.lifecycle_events",
    "braidflow.schemas.stats_observations",
    "braidflow.schemas.stats_figures",
    "braidflow.schemas.stats_positions",
    "braidflow.engine.ids",
    "braidflow.engine.trace_context",
    "braidflow.engine.cost",
    "braidflow.engine.step",
    "braidflow.engine.nodes.approval",
    "braidflow.engine.nodes.base",
    "braidflow.engine.nodes.classify",
    "braidflow.engine.nodes.code",
    "braidflow.engine.nodes.connected",
    "braidflow.engine.nodes.decision",
    "braidflow.engine.nodes.delay",
    "braidflow.engine.nodes.email",
    "braidflow.engine.nodes.end",
    "braidflow.engine.nodes.extract",
    "braidflow.engine.nodes.fetch_page",
    "braidflow.engine.nodes.foreach",
    "braidflow.engine.nodes.http",
    "braidflow.engine.nodes.join",
    "braidflow.engine.nodes.llm",
    "braidflow.engine.nodes.loop",
    "braidflow.engine.nodes.parallel",
    "braidflow.engine.nodes.publish",
    "braidflow.engine.nodes.subworkflow",
    "braidflow.engine.nodes.summarize",
    "braidflow.engine.nodes.task",
    "braidflow.engine.nodes.transform",
    "braidflow.engine.nodes.wait_event",
    "braidflow.engine.nodes.work",
)

_MODULE_SET = frozenset(MODULES)
GROUP = "braidflow._compiled"
MANIFEST = "_compiled.json"
PURE_VARIABLE = "BRAIDFLOW_PURE"

_PACKAGE_DIR = Path(__file__).resolve().parent
_log = logging.getLogger(__name__)


def source_path(module: str, package_dir: Path = _PACKAGE_DIR) -> Path:
    """The `.py` file of one of braidflow's modules, under the package's directory."""
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def source_hashes(modules: Sequence[str], package_dir: Path = _PACKAGE_DIR) -> dict[str, str]:
    """Each module's source sha256: what `_compiled.json` records at build time."""
    return {
        module: hashlib.sha256(source_path(module, package_dir).read_bytes()).hexdigest()
        for module in modules
    }


def _built(package_dir: Path) -> dict[str, str] | None:
    try:
        recorded = json.loads((package_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


class Build(NamedTuple):
    """How `MODULES` run in this process: compiled or not, whether a build is stale, and why."""

    compiled: bool
    stale: bool
    reason: str


def how_it_runs(environ: Mapping[str, str] = os.environ, package_dir: Path = _PACKAGE_DIR) -> Build:
    """Whether `MODULES` run compiled, and why (the worker logs it when it starts)."""
    if environ.get(PURE_VARIABLE, "") not in ("", "0"):
        return Build(False, False, f"pure Python: {PURE_VARIABLE} is set")
    built = _built(package_dir)
    if built is None:
        return Build(False, False, "pure Python: not compiled at install (docs/install.md)")
    if set(built) != _MODULE_SET:
        return Build(False, True, "pure Python: compiled for another list of modules")
    changed = [m for m, digest in source_hashes(MODULES, package_dir).items() if built[m] != digest]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return Build(False, True, f"pure Python: {changed[0]}{more} changed since it was compiled")
    return Build(True, False, f"compiled by mypyc: {len(MODULES)} modules")


class _Interpreted(importlib.abc.MetaPathFinder):
    """Finds `MODULES` as their `.py` files, ahead of the compiled extension beside each."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _MODULE_SET:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


@functools.cache
def choose() -> Build:
    """Decides once, before any of `MODULES` is imported, whether they run compiled, and why."""
    build = how_it_runs()
    if not build.compiled:
        sys.meta_path.insert(0, _Interpreted())
        if build.stale:
            _log.warning("braidflow runs as %s; `make install` compiles again", build.reason)
    return build
