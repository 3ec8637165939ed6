"""Hypothesis strategies: valid workflow documents built from series-parallel blocks.

A block is a `task`, a `transform`, a sequence of blocks, a `parallel` whose
2-3 branch blocks meet at a `join`, or a `decision` with 1-2 `when` edges and a
`default` edge whose branches meet at a `join`. The whole graph is one block
followed by one `end`. One branch of a split may be empty (split -> join).

Templates only read what surely ran before the reader: `input`, `vars`, and
nodes that dominate it (every path from the root to the reader passes them),
so a document never reads an output that a path not taken left empty.
Decisions read `input`, so different inputs take different paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# Conditions that split the `inputs()` space several ways.
INPUT_CONDITIONS = (
    "input.k == 1",
    "input.k > 2",
    "input.k < 2",
    "input.k > vars.limit",
    "input.flag",
    "!input.flag && input.k != 0",
    "input.k % 2 == 0",
)
VARIABLES = {"limit": 2}
INPUT_SCHEMA = {
    "type": "object",
    "required": ["k", "flag"],
    "properties": {"k": {"type": "integer"}, "flag": {"type": "boolean"}},
}
MAX_NODES = 28
MAX_DEPTH = 3

# Where the next node's inbound edge comes from: (source node, edge attributes).
Dangling = tuple[str, dict[str, Any]]


def inputs() -> st.SearchStrategy[dict[str, Any]]:
    """Execution inputs for generated workflows."""
    return st.fixed_dictionaries(
        {
            "k": st.integers(0, 4),
            "flag": st.booleans(),
            "x": st.one_of(st.integers(-3, 3), st.text(alphabet="ab", max_size=3)),
        }
    )


def task_output(node_id: str) -> dict[str, str]:
    """What the simulated executors answer for a task: conditions may rely on this shape."""
    return {"node": node_id}


@dataclass
class _Builder:
    draw: Callable[[st.SearchStrategy[Any]], Any]
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def add(self, node: dict[str, Any], into: list[Dangling]) -> str:
        self.nodes.append(node)
        for source, attrs in into:
            self.edges.append({"from": source, "to": node["id"], **attrs})
        return node["id"]

    @property
    def full(self) -> bool:
        return len(self.nodes) >= MAX_NODES

    # -- values that read what surely ran

    def value(self, sure: Mapping[str, str]) -> Any:
        """A params value: constants, input, or the output of a node that surely ran."""
        choices: list[Any] = [
            {"fixed": 1},
            {"x": "${input.x}"},
            {"k": "${input.k}", "note": "k is ${input.k}"},
            {"limit": "${vars.limit}", "flag": "${input.flag}"},
        ]
        if sure:
            upstream = self.draw(st.sampled_from(sorted(sure)))
            choices.append({"up": f"${{nodes.{upstream}.output}}", "k": "${input.k}"})
            choices.append({"text": f"from ${{nodes.{upstream}.output}}"})
        return self.draw(st.sampled_from(choices))

    def condition(self, sure: Mapping[str, str]) -> str:
        choices = list(INPUT_CONDITIONS)
        tasks = sorted(n for n, t in sure.items() if t == "task")
        if tasks:
            task = self.draw(st.sampled_from(tasks))
            choices.append(f"nodes.{task}.output.node == '{task}' && input.k >= 3")
            choices.append(f"nodes.{task}.output.node != '{task}'")
        return self.draw(st.sampled_from(choices))

    # -- blocks

    def block(
        self, into: list[Dangling], sure: dict[str, str], depth: int
    ) -> tuple[list[Dangling], dict[str, str]]:
        """Add one block fed by `into`; return what feeds the next node and what surely ran."""
        kinds = ["task", "transform"] if depth else []
        if depth < MAX_DEPTH and not self.full:
            kinds += ["sequence", "parallel", "decision"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "task":
            node_id = self.new_id("t")
            params: dict[str, Any] = {"handler": "h"}
            if self.draw(st.booleans()):
                params["input"] = self.value(sure)
            self.add({"id": node_id, "type": "task", "params": params}, into)
            return [(node_id, {})], {**sure, node_id: "task"}
        if kind == "transform":
            node_id = self.new_id("x")
            self.add(
                {"id": node_id, "type": "transform", "params": {"set": self.value(sure)}}, into
            )
            return [(node_id, {})], {**sure, node_id: "transform"}
        if kind == "sequence":
            length = self.draw(st.integers(2, 3))
            for _ in range(length):
                into, sure = self.block(into, sure, depth + 1)
            return into, sure
        return self.split(kind, into, sure, depth)

    def split(
        self, kind: str, into: list[Dangling], sure: dict[str, str], depth: int
    ) -> tuple[list[Dangling], dict[str, str]]:
        split_id = self.new_id("p" if kind == "parallel" else "d")
        node: dict[str, Any] = {"id": split_id, "type": kind}
        if kind == "parallel" and self.draw(st.booleans()):
            node["params"] = {"fail_fast": self.draw(st.booleans())}
        self.add(node, into)
        inside = {**sure, split_id: kind}
        if kind == "parallel":
            count = self.draw(st.integers(2, 3))
            # A parallel takes every edge whose `when` holds; keep the first unconditional.
            attrs: list[dict[str, Any]] = [{}]
            for _ in range(count - 1):
                conditional = self.draw(st.integers(0, 3)) == 0
                attrs.append({"when": self.condition(inside)} if conditional else {})
        else:
            whens = self.draw(st.integers(1, 2))
            attrs = [{"when": self.condition(inside)} for _ in range(whens)]
            attrs.insert(self.draw(st.integers(0, whens)), {"default": True})
        empty = self.draw(st.one_of(st.none(), st.integers(0, len(attrs) - 1)))
        arrivals: list[Dangling] = []
        after = dict(inside)
        for index, edge in enumerate(attrs):
            if index == empty:
                arrivals.append((split_id, edge))
                continue
            out, branch_sure = self.block([(split_id, edge)], dict(inside), depth + 1)
            arrivals.extend(out)
            if kind == "parallel" and "when" not in edge:
                after.update(branch_sure)
        join_id = self.new_id("j")
        params: dict[str, Any] = {}
        if self.draw(st.booleans()):
            params["wait_for"] = "all"
        merge = self.draw(st.sampled_from([None, "object", "array"]))
        if merge is not None:
            params["merge"] = merge
        join: dict[str, Any] = {"id": join_id, "type": "join"}
        if params:
            join["params"] = params
        self.add(join, arrivals)
        return [(join_id, {})], {**after, join_id: "join"}


@st.composite
def workflow_documents(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
    """A valid definition document (plain data, FORMAT.md v1) of series-parallel blocks."""
    builder = _Builder(draw)
    into, sure = builder.block([], {}, 0)
    if draw(st.booleans()):
        last = into[0][0]
        output: dict[str, Any] = {"last": f"${{nodes.{last}.output}}", "k": "${input.k}"}
        joins = sorted(n for n, t in sure.items() if t == "join")
        if joins:
            output["joined"] = f"${{nodes.{draw(st.sampled_from(joins))}.output}}"
    else:
        output = {"done": True}
    builder.add({"id": "finish", "type": "end", "params": {"output": output}}, into)
    doc: dict[str, Any] = {
        "id": "generated",
        "variables": dict(VARIABLES),
        "nodes": draw(st.permutations(builder.nodes)),
        "edges": builder.edges,
    }
    if draw(st.booleans()):
        doc["input"] = INPUT_SCHEMA
    return doc
