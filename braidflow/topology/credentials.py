"""A workflow's `${secrets.NAME}` against what its department's credentials allow, at deploy.

A deploy is not refused for it: the department may be deployed, or its list changed, after
the workflow, and the executor checks again at each call (docs/secrets.md). The deploy's answer
carries a warning naming the node, the secret and the department instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from braidflow.secrets import SecretsAllowed
from braidflow.topology.loading import Problem
from braidflow.topology.workflow import CompiledNode, Workflow

_URL_SECRET = re.compile(r"\$\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}")


def url_secrets(url: str) -> list[str]:
    """The secrets an alert webhook's URL names (`${secrets.NAME}`), in order."""
    return _URL_SECRET.findall(url)


def resolve_url(url: str, lookup: Callable[[str], str]) -> str:
    """An alert webhook's URL with each `${secrets.NAME}` replaced by `lookup(NAME)`."""
    return _URL_SECRET.sub(lambda m: lookup(m.group(1)), url)


def named_secrets(workflow: Workflow) -> Iterator[tuple[str, str]]:
    """(node id, secret name) for every `${secrets.NAME}` a node of `workflow` holds."""
    for node_id, compiled in workflow.nodes.items():
        for name in sorted(_secrets(compiled)):
            yield node_id, name


def _secrets(node: CompiledNode) -> frozenset[str]:
    found = frozenset().union(*(t.secrets() for t in node.params.values()))
    return found if node.item_node is None else found | _secrets(node.item_node)


def refused_secrets(workflow: Workflow, allowed: SecretsAllowed) -> list[Problem]:
    """The secrets a workflow names that its department's credentials do not allow, by node."""
    department = workflow.definition.department
    problems = []
    for node_id, name in named_secrets(workflow):
        refusal = allowed.refusal(name, department)
        if refusal is not None:
            problems.append(Problem(f"node '{node_id}'", f"{refusal}; the node will fail"))
    return problems
