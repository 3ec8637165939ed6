"""Named connections of `llm` nodes: where an endpoint is and which secret is its key.

A worker reads them from the YAML file `BRAIDFLOW_CONNECTIONS` names, once, at start, and
refuses to start on a mistake, naming the file and the field:

    openai:
      url: https://api.openai.com/v1
      key: ${secrets.OPENAI_API_KEY}
    local:
      url: http://127.0.0.1:11434/v1
      headers: {X-Team: support}

`url` is the base the OpenAI API's paths follow (`{url}/chat/completions`). `key`, when
given, is a secret reference and nothing else: the file names the secret, the executor looks
its value up at the moment of the call under the rules of any other secret (a department's
`credentials`, redaction; docs/secrets.md) and sends it as `Authorization: Bearer`.
`headers` and `query` values may hold references too (Azure OpenAI's `api-key` header);
there `$$` is a literal `$`. A definition names a connection only (`connection: openai`),
so neither the endpoint nor the key is ever in an execution's state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from braidflow.topology.kinds.llm import CONNECTION_NAME

ENV = "BRAIDFLOW_CONNECTIONS"
_KEY = re.compile(r"\$\{secrets\.[A-Za-z_][A-Za-z0-9_]*\}")
_FIELDS = ("url", "key", "headers", "query")


class ConnectionsError(ValueError):
    """A connections file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Connection:
    """One endpoint: its base `url`, the secret reference of its `key` (None: no key), and
    the `headers` and `query` every request to it carries (values may hold references)."""

    name: str
    url: str
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


def load_connections(path: Path | None) -> dict[str, Connection]:
    """The connections of the file at `path` (None: none); ConnectionsError naming it."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionsError(f"{ENV}: cannot read {path}: {exc.strerror}") from None
    return parse_connections(text, str(path))


def parse_connections(text: str, source: str) -> dict[str, Connection]:
    """The connections a file's `text` describes; `source` names the file in errors."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConnectionsError(f"{ENV}: {source} is not YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConnectionsError(f"{ENV}: {source}: expected connection names, each with a url")
    return {str(name): _connection(str(name), body, source) for name, body in raw.items()}


def _connection(name: str, body: Any, source: str) -> Connection:
    def refuse(where: str, why: str) -> ConnectionsError:
        return ConnectionsError(f"{ENV}: {source}: {where}: {why}")

    if not re.fullmatch(CONNECTION_NAME, name):
        raise refuse(name, "a connection's name is a letter or _, then letters, digits, _ . -")
    if not isinstance(body, Mapping):
        raise refuse(name, "expected an object with a url")
    unknown = sorted(str(k) for k in body if k not in _FIELDS)
    if unknown:
        raise refuse(f"{name}.{unknown[0]}", f"unknown field (fields: {', '.join(_FIELDS)})")
    url = body.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise refuse(f"{name}.url", f"expected an http:// or https:// URL, got {url!r}")
    key = body.get("key")
    if key is not None and not (isinstance(key, str) and _KEY.fullmatch(key)):
        # A key written out would sit in a file every reader of the config sees.
        raise refuse(f"{name}.key", "expected a secret reference, ${secrets.NAME}")
    return Connection(
        name,
        url.rstrip("/"),
        key,
        _texts(body.get("headers"), f"{name}.headers", refuse),
        _texts(body.get("query"), f"{name}.query", refuse),
    )


def _texts(
    value: Any, where: str, refuse: Callable[[str, str], ConnectionsError]
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise refuse(where, "expected an object of names and texts")
    for name, text in value.items():
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise refuse(f"{where}.{name}", f"expected a text, got {text!r}")
    return {str(name): str(text) for name, text in value.items()}
