"""The department map's links come from the definitions: sub-workflow calls, and events one
workflow publishes that another's trigger or wait takes."""

from __future__ import annotations

from braidflow.topology import Definition, load_workflow
from braidflow.topology.department_map import Link, links


def _definition(text: str) -> Definition:
    return load_workflow(text).definition


INTAKE = _definition("""
id: intake
nodes:
  - {id: call, type: subworkflow, params: {workflow: checks}}
  - {id: tell, type: publish, params: {type: ticket.opened}}
  - {id: done, type: end}
edges:
  - {from: call, to: tell}
  - {from: tell, to: done}
""")
CHECKS = _definition("""
id: checks
nodes:
  - {id: done, type: end}
edges: []
""")
ESCALATE = _definition("""
id: escalate
triggers:
  - {event: {types: ["ticket.*"]}}
nodes:
  - {id: done, type: end}
edges: []
""")
CLOSE = _definition("""
id: close
nodes:
  - {id: hold, type: wait_event, params: {type: ticket.opened, correlate: "event.data.id == input.id"}}
  - {id: done, type: end}
edges:
  - {from: hold, to: done}
""")


def test_calls_and_events_link_the_workflows() -> None:
    assert links([INTAKE, CHECKS, ESCALATE, CLOSE]) == [
        Link("intake", "checks", "calls"),
        Link("intake", "escalate", "event", "ticket.opened"),
        Link("intake", "close", "event", "ticket.opened"),
    ]


def test_a_link_to_a_workflow_not_on_the_map_is_left_out() -> None:
    assert links([INTAKE]) == []
    assert [link.label for link in links([INTAKE, CHECKS])] == ["calls"]
