"""Named connections of work nodes: where a server is and which secrets let a node in.

A worker reads them from the YAML file `BRAIDFLOW_CONNECTIONS` names, once, at start, and
refuses to start on a mistake, naming the file and the field. The URL's scheme says what a
connection is: http(s) an OpenAI-compatible endpoint (`llm` nodes), smtp(s) a mail server
(`email` nodes):

    openai:
      url: https://api.openai.com/v1
      key: ${secrets.OPENAI_API_KEY}
    local:
      url: http://127.0.0.1:11434/v1
      headers: {X-Team: support}
    mail:
      url: smtp://smtp.example.com:587
      username: braidflow
      password: ${secrets.SMTP_PASSWORD}

`url` is the base the OpenAI API's paths follow (`{url}/chat/completions`). `key`, when
given, is a secret reference and nothing else: the file names the secret, the executor looks
its value up at the moment of the call under the rules of any other secret (a department's
`credentials`, redaction; docs/secrets.md) and sends it as `Authorization: Bearer`.
`headers` and `query` values may hold references too (Azure OpenAI's `api-key` header);
there `$$` is a literal `$`. A definition names a connection only (`connection: openai`),
so neither the endpoint nor the key is ever in an execution's state.

An SMTP connection's `password` is a secret reference in the same way; its `username` a
text or a reference. `smtps://` speaks TLS from the first byte (port 465 by default);
`smtp://` (port 25 by default) upgrades with STARTTLS when the server offers it, and
`starttls: true` refuses a server that does not, `false` never upgrades.

`prices`, on a chat-completions endpoint, is what its models cost per million tokens, in the
currency of your choice (the same for every connection a department's budget adds up):

    openai:
      url: https://api.openai.com/v1
      prices:
        gpt-4o-mini: {prompt: 0.15, completion: 0.60}

A model node's output then has `cost` beside `usage` (docs/llm.md, "Cost"); the model the
answer names is looked up first, then the one the node asked for.
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
_FIELDS = ("url", "key", "headers", "query", "prices")
_PRICE_FIELDS = ("prompt", "completion")
_SMTP_FIELDS = ("url", "username", "password", "starttls")
_SMTP_PORTS = {"smtp": 25, "smtps": 465}


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
    # Per model, (prompt, completion) prices per million tokens; a model absent: no cost.
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def cost(self, models: tuple[str | None, ...], usage: Mapping[str, int]) -> float | None:
        """What `usage` cost at the price of the first of `models` priced; None: none is."""
        for model in models:
            price = self.prices.get(model) if model is not None else None
            if price is not None:
                prompt = usage.get("prompt_tokens", 0) * price[0]
                completion = usage.get("completion_tokens", 0) * price[1]
                # Rounded: a float's last digits would show in the API as noise.
                return round((prompt + completion) / 1_000_000, 9)
        return None


@dataclass(frozen=True, slots=True)
class SmtpConnection:
    """One mail server: `tls` from the first byte (smtps) or `starttls` (None: when offered),
    and the login, `username` and the secret reference of its `password` (None: no login)."""

    name: str
    host: str
    port: int
    tls: bool = False
    starttls: bool | None = None
    username: str | None = None
    password: str | None = None


def load_connections(path: Path | None) -> dict[str, Connection | SmtpConnection]:
    """The connections of the file at `path` (None: none); ConnectionsError naming it."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionsError(f"{ENV}: cannot read {path}: {exc.strerror}") from None
    return parse_connections(text, str(path))


def parse_connections(text: str, source: str) -> dict[str, Connection | SmtpConnection]:
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


def _connection(name: str, body: Any, source: str) -> Connection | SmtpConnection:
    def refuse(where: str, why: str) -> ConnectionsError:
        return ConnectionsError(f"{ENV}: {source}: {where}: {why}")

    if not re.fullmatch(CONNECTION_NAME, name):
        raise refuse(name, "a connection's name is a letter or _, then letters, digits, _ . -")
    if not isinstance(body, Mapping):
        raise refuse(name, "expected an object with a url")
    url = body.get("url")
    scheme = urlsplit(url).scheme if isinstance(url, str) else None
    if scheme in _SMTP_PORTS:
        return _smtp(name, body, refuse)
    unknown = sorted(str(k) for k in body if k not in _FIELDS)
    if unknown:
        raise refuse(f"{name}.{unknown[0]}", f"unknown field (fields: {', '.join(_FIELDS)})")
    if not isinstance(url, str) or scheme not in ("http", "https"):
        raise refuse(f"{name}.url", f"expected an http(s):// or smtp(s):// URL, got {url!r}")
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
        _prices(body.get("prices"), f"{name}.prices", refuse),
    )


def _smtp(
    name: str, body: Mapping[str, Any], refuse: Callable[[str, str], ConnectionsError]
) -> SmtpConnection:
    unknown = sorted(str(k) for k in body if k not in _SMTP_FIELDS)
    if unknown:
        raise refuse(
            f"{name}.{unknown[0]}",
            f"unknown field (an SMTP connection's: {', '.join(_SMTP_FIELDS)})",
        )
    url = urlsplit(str(body["url"]))
    try:
        port = url.port
    except ValueError:
        port = -1
    if not url.hostname or port == -1 or url.path not in ("", "/") or url.username:
        raise refuse(
            f"{name}.url", f"expected smtp://host:port or smtps://host:port, got {body['url']!r}"
        )
    username = body.get("username")
    if username is not None and not isinstance(username, str):
        raise refuse(f"{name}.username", f"expected a text, got {username!r}")
    password = body.get("password")
    if password is not None and not (isinstance(password, str) and _KEY.fullmatch(password)):
        raise refuse(f"{name}.password", "expected a secret reference, ${secrets.NAME}")
    if (username is None) != (password is None):
        raise refuse(name, "a login needs both username and password")
    starttls = body.get("starttls")
    if starttls is not None and not isinstance(starttls, bool):
        raise refuse(f"{name}.starttls", f"expected true or false, got {starttls!r}")
    tls = url.scheme == "smtps"
    if tls and starttls:
        raise refuse(f"{name}.starttls", "smtps:// is TLS from the start; STARTTLS is for smtp://")
    return SmtpConnection(
        name,
        url.hostname,
        port or _SMTP_PORTS[url.scheme],
        tls,
        False if tls else starttls,
        username,
        password,
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


def _prices(
    value: Any, where: str, refuse: Callable[[str, str], ConnectionsError]
) -> dict[str, tuple[float, float]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise refuse(where, "expected models, each with {prompt: N, completion: N} per 1M tokens")
    prices: dict[str, tuple[float, float]] = {}
    for model, price in value.items():
        at = f"{where}.{model}"
        if not isinstance(price, Mapping):
            raise refuse(at, f"expected {{prompt: N, completion: N}} per 1M tokens, got {price!r}")
        unknown = sorted(str(k) for k in price if k not in _PRICE_FIELDS)
        if unknown:
            raise refuse(f"{at}.{unknown[0]}", "unknown field (fields: prompt, completion)")
        pair = []
        for name in _PRICE_FIELDS:
            amount = price.get(name)
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0:
                raise refuse(f"{at}.{name}", f"expected a price of 0 or more, got {amount!r}")
            pair.append(float(amount))
        prices[str(model)] = (pair[0], pair[1])
    return prices
