"""Values of stored executions for property tests: states with every kind of field, and pairs of
steps that keep some node runs (the same objects) and change others."""

from __future__ import annotations

from hypothesis import strategies as st

from braidflow.engine.messages import NodeCompleted, NodeError, ParentLink, RunNode, TimerFired
from braidflow.engine.state import (
    ControlAction,
    ExecutionState,
    ForeachProgress,
    JoinState,
    LoopProgress,
    NodeRun,
)
from braidflow.schemas import OutboxEntry, StoredExecution, ValueRow

INTS = st.integers(0, 2**31 - 1)
LONGS = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=12)
IDS = st.text("abcdefgh_", min_size=1, max_size=6)
JSON = st.recursive(
    st.none() | st.booleans() | LONGS | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Large values take the codec's path for long JSON texts (kept by identity), marks a value row.
LARGE = st.builds(lambda n: [{"n": i, "pad": "x" * 40} for i in range(n)], st.integers(50, 80))
VALUES = JSON | LARGE | st.builds(ValueRow, IDS)
ERRORS = st.builds(NodeError, TEXT, TEXT, st.none() | IDS)


def runs(node_id: str) -> st.SearchStrategy[NodeRun]:
    return st.builds(
        NodeRun,
        st.just(node_id),
        st.sampled_from(["running", "waiting", "completed", "failed", "skipped"]),
        INTS,
        VALUES,
        VALUES,
        st.none() | ERRORS,
        st.none() | LONGS,
        st.none() | LONGS,
        st.lists(ERRORS, max_size=3).map(tuple),
    )


@st.composite
def node_maps(draw: st.DrawFn) -> dict[str, NodeRun]:
    node_ids = draw(st.lists(IDS, max_size=8, unique=True))
    return {node_id: draw(runs(node_id)) for node_id in node_ids}


HELD = st.one_of(
    st.builds(RunNode, TEXT, IDS, LONGS, IDS),
    st.builds(NodeCompleted, TEXT, IDS, LONGS, IDS, INTS, JSON),
    st.builds(TimerFired, TEXT, IDS, LONGS, IDS),
)
FOREACH = st.builds(
    ForeachProgress,
    IDS,
    INTS,
    INTS,
    INTS,
    st.lists(INTS, max_size=3).map(tuple),
    st.lists(st.tuples(INTS, JSON), max_size=3).map(tuple),
)


@st.composite
def states(draw: st.DrawFn, nodes: dict[str, NodeRun]) -> ExecutionState:
    return ExecutionState(
        execution_id=draw(IDS),
        workflow_id=draw(IDS),
        workflow_version=draw(INTS),
        status=draw(st.sampled_from(["running", "completed", "paused"])),
        started_at=draw(LONGS),
        updated_at=draw(LONGS),
        input=draw(VALUES),
        event=draw(st.none() | st.dictionaries(TEXT, JSON, max_size=3)),
        output=draw(VALUES),
        error=draw(st.none() | ERRORS),
        completed_at=draw(st.none() | LONGS),
        nodes=nodes,
        joins={
            j.node_id: j
            for j in draw(
                st.lists(
                    st.builds(
                        JoinState,
                        IDS,
                        st.lists(INTS, max_size=3).map(tuple),
                        st.lists(INTS, max_size=3).map(tuple),
                        st.booleans(),
                    ),
                    max_size=3,
                )
            )
        },
        timers=draw(st.dictionaries(IDS, LONGS, max_size=3)),
        paused=draw(st.booleans()),
        held=tuple(draw(st.lists(HELD, max_size=3))),
        parent=draw(st.none() | st.builds(ParentLink, IDS, IDS, IDS, INTS, JSON, st.none() | INTS)),
        children=draw(st.dictionaries(IDS, IDS, max_size=3)),
        control=tuple(
            draw(st.lists(st.builds(ControlAction, TEXT, TEXT, LONGS, st.none() | IDS), max_size=2))
        ),
        foreach={f.node_id: f for f in draw(st.lists(FOREACH, max_size=2))},
        loops={
            p.node_id: p for p in draw(st.lists(st.builds(LoopProgress, IDS, INTS), max_size=2))
        },
        dept=draw(st.none() | st.dictionaries(TEXT, JSON, max_size=3)),
        tenant=draw(IDS),
        admission=draw(st.none() | TEXT),
        traceparent=draw(st.none() | TEXT),
    )


OUTBOXES = st.lists(
    st.builds(
        OutboxEntry,
        # The kinds a step sends, and any other text.
        st.sampled_from(["transition", "task", "event", "dead_letter", "publish"]) | TEXT,
        TEXT,
        st.binary(max_size=40),
        st.none() | TEXT,
        st.none() | st.binary(max_size=8),
        st.none() | TEXT,
    ),
    max_size=4,
).map(tuple)


@st.composite
def steps(draw: st.DrawFn) -> tuple[StoredExecution, StoredExecution]:
    """A stored execution and the next one: some runs kept (the same objects), some replaced,
    dropped or added, in any order, and any other field changed."""
    before = draw(node_maps())
    after: dict[str, NodeRun] = {}
    for node_id, run in before.items():
        fate = draw(st.sampled_from(["kept", "kept", "replaced", "dropped"]))
        if fate == "kept":
            after[node_id] = run
        elif fate == "replaced":
            after[node_id] = draw(runs(node_id))
    for node_id, run in draw(node_maps()).items():
        after.setdefault(node_id, run)
    order = draw(st.permutations(list(after)))
    first = StoredExecution(draw(states(before)), draw(OUTBOXES))
    second = StoredExecution(draw(states({n: after[n] for n in order})), draw(OUTBOXES))
    return first, second
