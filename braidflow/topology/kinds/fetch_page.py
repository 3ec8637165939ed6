"""The `fetch_page` node kind. An executor GETs a web page and picks fields out of it by CSS
selectors, so a workflow reads a page's parts rather than its whole markup."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

_FIELD: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1, "description": "a CSS selector: its first match's text"},
        {
            "type": "object",
            "required": ["css"],
            "additionalProperties": False,
            "properties": {
                "css": {"type": "string", "minLength": 1},
                "attr": {
                    "type": "string",
                    "minLength": 1,
                    "description": "an attribute of the match instead of its text",
                },
                "all": {"type": "boolean", "description": "every match, as a list"},
            },
        },
    ]
}

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["url", "select"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "minLength": 1},
        "headers": {"type": ["object", "string"]},
        "select": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": _FIELD,
            "description": "the output's fields, each picked by a CSS selector",
        },
    },
}


def selector(field: Any) -> str | None:
    """The CSS selector of one `select` field (a selector, or `{css, attr?, all?}`)."""
    if isinstance(field, str):
        return field
    if isinstance(field, Mapping) and isinstance(field.get("css"), str):
        return str(field["css"])
    return None


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    select = params.get("select")
    if not isinstance(select, Mapping):
        return
    # Imported here: soupsieve's parser takes a tenth of a second to import, which every
    # start of a worker and every `braidflow validate` would pay for kinds it may never see.
    import soupsieve

    for name, field in select.items():
        css = selector(field)
        if not css:
            continue
        try:
            soupsieve.compile(css)
        except soupsieve.SelectorSyntaxError as exc:
            first = str(exc).splitlines()[0]
            yield Problem(where, f"params.select.{name}: {css!r} is not a CSS selector: {first}")


SPEC = KindSpec(
    "fetch_page",
    "work",
    PARAMS,
    templated=("url", "headers"),
    error_edges=True,
    check=_check,
)
