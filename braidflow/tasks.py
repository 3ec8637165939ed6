"""Task handlers: the Python functions `task` nodes run, registered by name.

```python
import braidflow

@braidflow.task("hr.check")
async def check(input, context):
    return {"ok": True, "key": context.idempotency_key}
```

A handler takes `(input)` or `(input, context)` and returns JSON. `async def`
handlers run on the executor's event loop; plain functions run in a worker
thread so they cannot block it. Raising fails the node with the exception's
type and message; raise `NodeFailure` to choose the type yourself.

A task may run more than once (at least once delivery, a crash mid-run): use
`context.idempotency_key` to make side effects happen once.

`context.secrets["NAME"]` reads a secret at the moment of the run; its value is
taken out of the handler's output and error message (docs/secrets.md).
`context.traceparent` is the node run's span (W3C Trace Context): send it on with
the calls a handler makes, so they join the execution's trace (docs/traces.md).

`context.log("text", level="info")` and the standard `logging` inside a handler are kept
per node run (`braidflow.node_logs`; `GET /api/v1/executions/{id}/logs`, `braidflow logs`).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from braidflow.node_logs import LEVELS, NodeLog
from braidflow.secrets import TaskSecrets

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a handler knows about the run it is part of; `item` is the foreach item's index;
    `secrets["NAME"]` a secret of the execution's tenant (docs/secrets.md); `traceparent`
    the node run's span (None for a task requested before traces); `timeout_ms` the time
    the run may take, after which it is cancelled; `log(message)` adds a line to the node
    run's log."""

    execution_id: str
    workflow_id: str
    node_id: str
    attempt: int
    idempotency_key: str
    item: int | None = None
    secrets: TaskSecrets = field(default_factory=TaskSecrets)
    traceparent: str | None = None
    node_log: NodeLog | None = field(default=None, repr=False, compare=False)
    timeout_ms: int | None = None

    def log(self, message: str, level: str = "info") -> None:
        """Add a line to this node run's log; `level` one of debug, info, warning, error,
        critical (ValueError naming them otherwise)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        if self.node_log is not None:
            self.node_log.add(level, str(message))


class NodeFailure(Exception):
    """Fails the node with a chosen error type, e.g. `NodeFailure("NotFound", "no such employee")`."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


class HandlerModuleError(ImportError):
    """A handler module named in the configuration could not be imported."""


@dataclass(frozen=True, slots=True)
class RegisteredTask:
    """A handler with its calling convention worked out once, at registration."""

    name: str
    function: Callable[..., Any]
    is_async: bool
    takes_context: bool

    @property
    def qualified_name(self) -> str:
        return _qualified_name(self.function)

    async def __call__(self, input: Any, context: TaskContext) -> Any:
        args = (input, context) if self.takes_context else (input,)
        if self.is_async:
            return await self.function(*args)
        return await asyncio.to_thread(self.function, *args)


class TaskRegistry:
    """Handlers by name. The module-level `registry` is the default; tests make their own."""

    def __init__(self) -> None:
        self._tasks: dict[str, RegisteredTask] = {}

    def task(self, name: str) -> Callable[[F], F]:
        """Decorator registering a function as the handler called `name`; returns it unchanged."""

        def register(function: F) -> F:
            self.register(name, function)
            return function

        return register

    def register(self, name: str, function: Callable[..., Any]) -> RegisteredTask:
        """Register `function` as `name`; TypeError if it cannot be a handler or the name is taken."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a task name must be a non-empty string, not {name!r}")
        registered = RegisteredTask(
            name=name,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
            takes_context=_takes_context(function),
        )
        existing = self._tasks.get(name)
        # The same function seen again (its module imported twice) is not a conflict.
        if existing is not None and existing.qualified_name != registered.qualified_name:
            raise TypeError(
                f"task {name!r} is registered twice: by {existing.qualified_name}"
                f" and by {registered.qualified_name}"
            )
        self._tasks[name] = registered
        return registered

    def get(self, name: str) -> RegisteredTask | None:
        """The handler called `name`, or None."""
        return self._tasks.get(name)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks


registry = TaskRegistry()
"""The default registry: `@braidflow.task` writes to it and workers read from it."""


def task(name: str) -> Callable[[F], F]:
    """Register the decorated function as the handler of `task` nodes naming `name`."""
    return registry.task(name)


def load_handler_modules(names: Iterable[str]) -> None:
    """Import each module, so its `@task` decorators register their handlers.

    A name is a dotted module name, looked up from the current directory too (as
    uvicorn and celery do), or the path of a `.py` file.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            if name.endswith(".py"):
                _import_file(Path(name))
            else:
                importlib.import_module(name)
        except Exception as exc:
            raise HandlerModuleError(
                f"cannot import handler module {name!r}: {type(exc).__name__}: {exc}", name=name
            ) from exc


def _import_file(path: Path) -> None:
    module_name = f"braidflow_handlers.{path.stem}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def _qualified_name(function: Callable[..., Any]) -> str:
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{qualname}"


def _takes_context(function: Callable[..., Any]) -> bool:
    """True for `(input, context)`, False for `(input)`; TypeError for anything else."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{_qualified_name(function)} is not a function: {exc}") from None
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    required_keywords = [
        p
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    required_positional = [p for p in positional if p.default is inspect.Parameter.empty]
    if required_keywords or len(required_positional) > 2 or not (positional or variadic):
        raise TypeError(
            f"{_qualified_name(function)} cannot be a task handler:"
            " it must take (input) or (input, context)"
        )
    return variadic or len(positional) >= 2
