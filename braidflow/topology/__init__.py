"""Workflow definitions: model, loading, validation, graph analysis, expressions. Pure."""

from braidflow.topology.graph import Graph, ParallelGroup
from braidflow.topology.loading import DefinitionError, Problem, definition_schema, parse_text
from braidflow.topology.model import Definition, Edge, Node, Retry
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
    "Definition",
    "DefinitionError",
    "Edge",
    "Graph",
    "Node",
    "ParallelGroup",
    "Problem",
    "Retry",
    "Workflow",
    "compile_workflow",
    "definition_schema",
    "load_workflow",
    "parse_text",
    "validate_text",
]
