"""Workflow definitions: model, loading, validation, graph analysis, expressions. Pure."""

from braidflow.topology.graph import Graph, ParallelGroup
from braidflow.topology.kinds import definition_schema
from braidflow.topology.loading import DefinitionError, Problem, parse_text
from braidflow.topology.model import (
    Definition,
    Edge,
    EventTrigger,
    Node,
    Retry,
    ScheduleTrigger,
    Trigger,
    WebhookTrigger,
)
from braidflow.topology.schedules import schedule_slots
from braidflow.topology.subscriptions import (
    ConditionError,
    EventMatch,
    Subscription,
    SubscriptionIndex,
)
from braidflow.topology.workflow import (
    CompiledEdge,
    CompiledNode,
    Workflow,
    compile_workflow,
    load_workflow,
    validate_text,
)

__all__ = [
    "CompiledEdge",
    "CompiledNode",
    "ConditionError",
    "Definition",
    "DefinitionError",
    "Edge",
    "EventMatch",
    "EventTrigger",
    "Graph",
    "Node",
    "ParallelGroup",
    "Problem",
    "Retry",
    "ScheduleTrigger",
    "Subscription",
    "SubscriptionIndex",
    "Trigger",
    "WebhookTrigger",
    "Workflow",
    "compile_workflow",
    "definition_schema",
    "load_workflow",
    "parse_text",
    "schedule_slots",
    "validate_text",
]
