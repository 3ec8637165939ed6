"""The onboarding definition, with every wait node kind, an on_error edge on each path, `retry.on`
and `settings.on_failure`; and the edits the topology tests make to it."""

from __future__ import annotations

from typing import Any

import yaml

from braidflow.topology import parse_text

# Every new node type, an on_error edge on each path, retry.on and the new settings.
ONBOARDING = """
id: onboarding
variables: {team: it}
settings: {timeout: 7d, on_failure: park}
nodes:
  - id: provision
    type: task
    params: {handler: it.provision, input: {who: "${input.who}"}}
    timeout: 30s
    retry: {max_attempts: 3, backoff: exponential, initial: 1s, on: [Timeout, HttpStatus]}
  - id: note_failure
    type: transform
    params: {set: {reason: "${nodes.provision.error.message}"}}
  - id: settled
    type: join
    params: {wait_for: any, timeout: 1h}
  - id: ask
    type: approval
    params:
      message: "Give ${input.who} a laptop? (${vars.team})"
      choices: [approve, reject, later]
      input: {type: object, properties: {note: {type: string}}}
      on_timeout: reject
    timeout: 2d
  - id: cool_off
    type: delay
    params: {for: 24h}
  - id: first_day
    type: delay
    params: {until: "${input.start}"}
  - id: order
    type: subworkflow
    params:
      workflow: laptop-order
      input: {who: "${input.who}", choice: "${nodes.ask.output.choice}"}
      inherit_context: false
    timeout: 1d
  - id: done
    type: end
    params: {output: {ordered: "${nodes.order.output}"}}
  - id: order_failed
    type: end
    params: {output: {error: "${nodes.order.error}", from: "${parent.vars}"}}
edges:
  - {from: provision, to: settled}
  - {from: provision, to: note_failure, on_error: true}
  - {from: note_failure, to: settled}
  - {from: settled, to: ask}
  - {from: ask, to: cool_off}
  - {from: cool_off, to: first_day}
  - {from: first_day, to: order}
  - {from: order, to: done}
  - {from: order, to: order_failed, on_error: true}
"""


def edited(change: Any, text: str = ONBOARDING) -> str:
    """`text` after `change` has edited its document in place."""
    doc = parse_text(text)  # not yaml.safe_load: it reads the key `on` as true
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def edge(doc: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    return next(e for e in doc["edges"] if e["from"] == source and e["to"] == target)


def between(*nodes: dict[str, Any]) -> str:
    """start -> the given nodes in a row -> done, as YAML."""
    chain = [{"id": "start", "type": "task", "params": {"handler": "h.start"}}, *nodes]
    doc = {
        "id": "wf",
        "variables": {"url": "http://example.test"},
        "nodes": [*chain, {"id": "done", "type": "end"}],
        "edges": [
            {"from": a["id"], "to": b["id"]}
            for a, b in zip(chain, [*chain[1:], {"id": "done"}], strict=True)
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)
