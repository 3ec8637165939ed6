"""The CEL interpreter (the `common-expression-language` package), without its shell.

`import cel` also imports `cel.cli`, the package's interactive shell (typer, rich,
prompt_toolkit, pygments): 0.2-0.3 s of CPU, and one to two seconds of a loaded machine's
wall time, at every start of a worker, of dev mode and of the command line, for nothing
braidflow calls. The shell's module is held back while the package loads; an
`import cel.cli` afterwards still loads the real one.
"""

from __future__ import annotations

import sys
import types


def _without_shell() -> types.ModuleType:
    if "cel" in sys.modules:
        return sys.modules["cel"]
    stand_in = types.ModuleType("cel.cli")
    sys.modules["cel.cli"] = stand_in
    try:
        import cel
    finally:
        if sys.modules.get("cel.cli") is stand_in:
            del sys.modules["cel.cli"]
    if getattr(cel, "cli", None) is stand_in:
        del cel.cli
    return cel


cel = _without_shell()
