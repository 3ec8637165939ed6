"""Work node kinds other packages add: `braidflow.CustomKind`, registered through the
`braidflow.nodes` entry-point group (docs/custom-kinds.md).

```python
import braidflow

async def greet(params, context):
    context.log(f"greeting {params['name']}")
    return {"greeting": f"{params['salutation']}, {params['name']}"}

GREET = braidflow.CustomKind(
    name="greet",
    params={
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "salutation": {"type": "string"}},
    },
    templated=("name",),
    run=greet,
)
```

and in the package's `pyproject.toml`:

```toml
[project.entry-points."braidflow.nodes"]
greet = "acme_nodes:GREET"
```

`run(params, context)` gets the node's params, the templated ones rendered, and the
`braidflow.TaskContext` a task handler gets (secrets, log, idempotency key, timeout).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.tasks import TaskContext

ENTRY_POINT_GROUP = "braidflow.nodes"

KindRun = Callable[[dict[str, Any], TaskContext], Awaitable[Any]]
"""`async run(params, context) -> output`: the output is JSON; raising fails the node with the
exception's type and message (`braidflow.NodeFailure` chooses the type)."""


@dataclass(frozen=True, slots=True)
class CustomKind:
    """A work node kind of another package: its `name` (a node's `type`), the JSON Schema of
    its `params` (an object), the params that may hold `${...}` templates, and the async
    `run` the executor calls. Its nodes have retries, timeouts, `on_error` edges and
    idempotency keys as every work node has."""

    name: str
    params: Mapping[str, Any]
    run: KindRun
    templated: tuple[str, ...] = ()
