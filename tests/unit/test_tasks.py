"""Task handlers: users register functions by name, and the executor calls them the same way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import braidflow
from braidflow import tasks
from braidflow.tasks import (
    HandlerModuleError,
    TaskContext,
    TaskRegistry,
    load_handler_modules,
)

CONTEXT = TaskContext(
    execution_id="e1", workflow_id="wf", node_id="hr", attempt=2, idempotency_key="e1:hr:2"
)


async def test_an_async_handler_gets_the_input_and_the_context() -> None:
    registry = TaskRegistry()

    @registry.task("hr.check")
    async def check(input, context):
        return {"employee": input["employee"], "key": context.idempotency_key}

    handler = registry.get("hr.check")
    assert handler is not None
    assert await handler({"employee": "ada"}, CONTEXT) == {"employee": "ada", "key": "e1:hr:2"}


async def test_a_handler_that_takes_only_the_input_is_called_without_context() -> None:
    registry = TaskRegistry()

    @registry.task("double")
    async def double(input):
        return input * 2

    handler = registry.get("double")
    assert handler is not None and not handler.takes_context
    assert await handler(21, CONTEXT) == 42


async def test_a_sync_handler_runs_off_the_event_loop_thread() -> None:
    registry = TaskRegistry()
    loop_thread = threading.get_ident()

    @registry.task("sync")
    def sync(input, context):
        return {"same_thread": threading.get_ident() == loop_thread, "node": context.node_id}

    handler = registry.get("sync")
    assert handler is not None and not handler.is_async
    assert await handler(None, CONTEXT) == {"same_thread": False, "node": "hr"}


async def test_sync_handlers_do_not_block_each_other() -> None:
    registry = TaskRegistry()
    both_running = threading.Barrier(2, timeout=5)

    @registry.task("meet")
    def meet(input):
        both_running.wait()  # raises BrokenBarrierError if the two never overlap
        return input

    handler = registry.get("meet")
    assert handler is not None
    assert await asyncio.gather(handler(1, CONTEXT), handler(2, CONTEXT)) == [1, 2]


def test_a_registry_is_truthy_even_when_empty() -> None:
    # Callers write `registry or default_registry`: an empty test registry must not be swapped.
    assert TaskRegistry()


def test_the_decorator_returns_the_function_unchanged() -> None:
    registry = TaskRegistry()

    def plain(input):
        return input

    assert registry.task("plain")(plain) is plain
    assert "plain" in registry and registry.names() == ["plain"]


def test_a_name_taken_by_another_function_is_an_error_naming_both() -> None:
    registry = TaskRegistry()

    @registry.task("hr.check")
    def first(input):
        return 1

    def second(input):
        return 2

    with pytest.raises(TypeError, match=r"'hr\.check' is registered twice") as raised:
        registry.register("hr.check", second)
    assert "first" in str(raised.value) and "second" in str(raised.value)


def test_registering_the_same_function_again_is_harmless() -> None:
    registry = TaskRegistry()

    def handler(input):
        return input

    registry.register("same", handler)
    registry.register("same", handler)
    assert registry.names() == ["same"]


@pytest.mark.parametrize(
    "function",
    [
        lambda: None,
        lambda a, b, c: None,
        lambda a, *, required: None,
    ],
    ids=["no-parameters", "three-required", "required-keyword"],
)
def test_a_function_that_cannot_take_input_and_context_is_refused(function) -> None:
    with pytest.raises(TypeError, match=r"must take \(input\) or \(input, context\)"):
        TaskRegistry().register("bad", function)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(TypeError, match="non-empty string"):
        TaskRegistry().register("", lambda input: input)


def test_names_are_listed_sorted() -> None:
    registry = TaskRegistry()
    for name in ("b", "a", "c"):
        registry.register(name, lambda input: input)
    assert registry.names() == ["a", "b", "c"]


def test_the_package_decorator_writes_to_the_default_registry() -> None:
    @braidflow.task("tests.unit.default_registry")
    def handler(input, context: braidflow.TaskContext):
        return input

    assert tasks.registry.get("tests.unit.default_registry") is not None


def test_handler_modules_are_imported_by_dotted_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_handlers.py").write_text(
        "import braidflow\n\n"
        "@braidflow.task('tests.unit.from_module')\n"
        "def handler(input):\n"
        "    return input\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_handlers", raising=False)
    load_handler_modules(["my_handlers"])
    assert "tests.unit.from_module" in tasks.registry


def test_a_missing_handler_module_is_named_in_the_error() -> None:
    with pytest.raises(HandlerModuleError, match=r"'no_such_handlers_module'.*ModuleNotFoundError"):
        load_handler_modules(["no_such_handlers_module"])


def test_a_handler_module_that_raises_on_import_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_handlers.py").write_text("raise RuntimeError('missing API token')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        HandlerModuleError, match=r"'broken_handlers': RuntimeError: missing API token"
    ):
        load_handler_modules(["broken_handlers"])


def test_importing_braidflow_stays_light() -> None:
    heavy = {"faust", "aiohttp", "aiokafka", "confluent_kafka", "fastavro"}
    code = (
        "import sys, braidflow; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
