"""A Mermaid flowchart of a definition, for docs, reviews and `braidflow inspect`."""

from __future__ import annotations

from braidflow.topology.layout import edge_label
from braidflow.topology.model import Definition, Node
from braidflow.topology.workflow import Workflow

# Words the flowchart parser takes as statements; `end` as a node id breaks the diagram.
_KEYWORDS = frozenset(
    {
        "end",
        "graph",
        "flowchart",
        "subgraph",
        "direction",
        "style",
        "linkStyle",
        "classDef",
        "class",
        "click",
        "call",
        "href",
        "default",
    }
)
# Mermaid entity codes. `#` first, so that the codes written for the others stay intact;
# `<` and `>` would otherwise be read as HTML tags.
_ESCAPES = (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"))
_SHAPES = {
    "decision": ("{", "}"),
    "parallel": ("[[", "]]"),
    "join": ("[[", "]]"),
    "end": ("([", "])"),
}


def _escape(text: str) -> str:
    for char, code in _ESCAPES:
        text = text.replace(char, code)
    return text


def _mermaid_ids(nodes: tuple[Node, ...]) -> dict[str, str]:
    """Node id -> Mermaid id: ids are kept, unless Mermaid reserves them."""
    taken = {n.id for n in nodes}
    ids: dict[str, str] = {}
    for node in nodes:
        mid = node.id
        if mid in _KEYWORDS:
            while mid in taken:
                mid += "_"
            taken.add(mid)
        ids[node.id] = mid
    return ids


def _node_line(node: Node, mid: str) -> str:
    opening, closing = _SHAPES.get(node.type, ("[", "]"))
    title = node.id if node.type in _SHAPES else f"{node.id} ({node.type})"
    # The line break is markup, so it goes in after the text is escaped.
    label = "<br/>".join(_escape(part) for part in (title, node.name) if part is not None)
    return f'    {mid}{opening}"{label}"{closing}'


def mermaid(source: Workflow | Definition) -> str:
    """Mermaid `flowchart TD`: a shape per node type; edges labelled by condition or kind."""
    definition = source.definition if isinstance(source, Workflow) else source
    ids = _mermaid_ids(definition.nodes)
    lines = ["flowchart TD"]
    lines.extend(_node_line(node, ids[node.id]) for node in definition.nodes)
    for edge in definition.edges:
        # A hand-built Definition may name unknown nodes; draw those as written.
        source_id, target_id = ids.get(edge.source, edge.source), ids.get(edge.target, edge.target)
        text = edge_label(edge)
        if text is None:
            label = ""
        elif edge.when is not None or edge.label is not None:
            label = f'|"{_escape(text)}"|'
        else:
            label = f"|{text}|"
        lines.append(f"    {source_id} -->{label} {target_id}")
    return "\n".join(lines) + "\n"
