"""The engine's records built by `quick_init`'s constructor: the arguments, defaults and
frozenness of the `__init__` dataclasses writes."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from braidflow.engine import messages, state
from braidflow.engine.frozen import quick_init
from braidflow.engine.state import ExecutionState, NodeRun

RECORDS = [
    cls
    for module in (state, messages)
    for cls in vars(module).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_every_record_takes_its_fields_with_their_defaults(cls: type) -> None:
    assert cls.__new__.__qualname__ == f"{cls.__qualname__}.__new__"
    parameters = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in parameters] == [f.name for f in dataclasses.fields(cls)]
    for p, f in zip(parameters, dataclasses.fields(cls), strict=True):
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default
        elif f.default_factory is dataclasses.MISSING:
            assert p.default is inspect.Parameter.empty


def test_a_record_is_built_as_dataclasses_builds_it_and_stays_frozen() -> None:
    run = NodeRun("a", "running", 1, started_at=5)
    assert run == NodeRun(node_id="a", status="running", attempt=1, started_at=5)
    assert (run.input, run.errors, run.completed_at) == (None, (), None)
    assert hash(run) == hash(NodeRun("a", "running", 1, None, None, None, 5))
    assert type(run) is NodeRun and not hasattr(run, "__dict__")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(run, protocol)) == run
    assert copy.copy(run) == run and copy.deepcopy(run) == run
    assert dataclasses.replace(run, status="completed").status == "completed"
    with pytest.raises(FrozenInstanceError):
        run.status = "completed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        NodeRun("a")  # type: ignore[call-arg]


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    first = ExecutionState("e1", "wf", 1, "running", 0, 0)
    second = ExecutionState("e1", "wf", 1, "running", 0, 0)
    assert first.nodes == {} and first.nodes is not second.nodes
    given = {"a": NodeRun("a", "completed")}
    assert ExecutionState("e1", "wf", 1, "running", 0, 0, nodes=given).nodes is given


def test_only_a_frozen_dataclass_with_slots_and_a_plain_init_takes_it() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class Finished:
        a: int
        b: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, NotFrozen, Finished):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_a_record_refuses_to_lose_a_field() -> None:
    run = NodeRun("a", "running", 1)
    with pytest.raises(FrozenInstanceError):
        del run.status  # type: ignore[misc]
    assert run == NodeRun("a", "running", 1)


def test_a_record_class_cannot_be_subclassed() -> None:
    with pytest.raises(TypeError):

        class Wider(NodeRun):  # type: ignore[misc]
            pass


def test_a_record_deriving_from_another_is_refused() -> None:
    # Its layout is its base's slots and its own: no plain class of its own slots matches it.
    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        b: int

    with pytest.raises(TypeError):
        quick_init(Derived)
