"""CEL conditions and `${...}` templates, compiled once per definition.

Evaluation goes through the `common-expression-language` package (a Rust CEL
interpreter); nothing here ever calls `eval`. Static analysis (which names and
which nodes an expression reads) is done at compile time so that validation
can reject unknown names and the engine can build small activations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.topology.cel_package import cel
from braidflow.topology.secret_references import SECRET_HOLE, escape_dollars, reference

# `nodes.<id>` holds `output`, `status` and `error` (`{type, message}` when it failed, else
# null). `parent` is a child execution's view of its parent: `{input, vars, event}`, or null
# in a top-level execution and without `inherit_context`.
SCOPE_NAMES = frozenset({"input", "vars", "nodes", "execution", "event", "dept", "parent"})

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TOKEN = re.compile(
    r"""
    (?P<string>[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)
  | (?P<punct>\S)
    """,
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """An expression that does not compile, or failed while evaluating."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str) -> list[_Token]:
    return [
        _Token(m.lastgroup or "punct", m.group())
        for m in _TOKEN.finditer(source)
        if m.lastgroup is not None
    ]


def _string_value(token: _Token) -> str | None:
    text = token.text.lstrip("rRbB")
    quote = text[:3] if text[:3] in ("'''", '"""') else text[:1]
    return text[len(quote) : -len(quote)]


def _member_references(tokens: list[_Token], root: str) -> frozenset[str]:
    """Members read as `<root>.<name>` or `<root>['<name>']`."""
    found: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text != root:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue
        rest = tokens[i + 1 : i + 4]
        if len(rest) >= 2 and rest[0].text == "." and rest[1].kind == "ident":
            found.add(rest[1].text)
        elif len(rest) >= 3 and rest[0].text == "[" and rest[1].kind == "string":
            value = _string_value(rest[1])
            if value is not None:
                found.add(value)
    return frozenset(found)


def _macro_variables(tokens: list[_Token]) -> frozenset[str]:
    """Variables bound by comprehension macros (`xs.exists(x, ...)`)."""
    bound: set[str] = set()
    for i in range(len(tokens) - 4):
        if (
            tokens[i].text == "."
            and tokens[i + 1].text in _MACROS
            and tokens[i + 2].text == "("
            and tokens[i + 3].kind == "ident"
            and tokens[i + 4].text == ","
        ):
            bound.add(tokens[i + 3].text)
    return frozenset(bound)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled CEL expression and the names it reads."""

    source: str
    program: Any
    names: frozenset[str]
    nodes: frozenset[str]
    path: tuple[str, ...] | None = None

    def members(self, root: str) -> frozenset[str]:
        """Names read under `root`, e.g. `members("vars")` for `vars.url`."""
        return _member_references(_tokens(self.source), root)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate against `scope`; only the names this expression reads are passed."""
        if self.path is not None:
            return self._select(scope)
        activation = {name: scope.get(name) for name in self.names}
        if "nodes" in activation and activation["nodes"] is not None:
            all_nodes = activation["nodes"]
            activation["nodes"] = {n: all_nodes[n] for n in self.nodes if n in all_nodes}
        try:
            return self.program.execute(activation)
        except KeyError as exc:
            raise ExpressionError(f"`{self.source}`: no such key {exc}") from None
        except Exception as exc:
            raise ExpressionError(f"`{self.source}`: {exc}") from None

    def _select(self, scope: Mapping[str, Any]) -> Any:
        # Most templates are plain selections (`input.name`); a walk through dicts
        # gives what CEL would, without converting the activation to CEL values.
        assert self.path is not None
        value: Any = scope
        for i, key in enumerate(self.path):
            if not isinstance(value, Mapping):
                at = ".".join(self.path[:i])
                raise ExpressionError(f"`{self.source}`: {at} is not a map")
            if key not in value:
                raise ExpressionError(f"`{self.source}`: no such key '{key}'")
            value = value[key]
        return value


_SELECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def compile_expression(source: str) -> Expression:
    """Compile a CEL expression, raising ExpressionError with the parser's message."""
    try:
        program = cel.compile(source)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExpressionError(message) from None
    tokens = _tokens(source)
    names = frozenset(program.variables()) - _macro_variables(tokens)
    path = tuple(source.split(".")) if _SELECTION.match(source) else None
    if path is not None and path[0] not in names:
        path = None  # `true`, `null`: literals, not selections
    return Expression(source, program, names, _member_references(tokens, "nodes"), path)


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    expression: Expression | None
    secret: str | None = None  # `${secrets.NAME}`: rendered as itself, for an executor


@dataclass(frozen=True, slots=True)
class Template:
    """A string with `${...}` holes. A string that is one hole keeps the value's type."""

    parts: tuple[_Part, ...]

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(p.expression for p in self.parts if p.expression is not None)

    @property
    def is_lone(self) -> bool:
        """Whether the string is one `${...}` hole, which keeps the value's type."""
        return len(self.parts) == 1 and self.parts[0].expression is not None

    @property
    def secrets(self) -> frozenset[str]:
        """The secrets it names (`${secrets.NAME}` holes)."""
        return frozenset(p.secret for p in self.parts if p.secret is not None)

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self.is_lone:
            return self.parts[0].expression.evaluate(scope)
        return "".join(
            p.text if p.expression is None else _as_text(p.expression.evaluate(scope))
            for p in self.parts
        )

    def render_request(self, scope: Mapping[str, Any]) -> Any:
        """Rendered for an executor (`secret_references`): `${secrets.NAME}` kept, every
        other `$` doubled."""
        if self.is_lone:
            return escape_dollars(self.parts[0].expression.evaluate(scope))
        return "".join(
            reference(p.secret)
            if p.secret is not None
            else (
                p.text if p.expression is None else _as_text(p.expression.evaluate(scope))
            ).replace("$", "$$")
            for p in self.parts
        )


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _hole_end(text: str, start: int) -> int:
    """Index of the `}` closing the hole whose body starts at `start`, skipping CEL strings."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            triple = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else None
            quote = triple or ch
            j = i + len(quote)
            while j < len(text) and not text.startswith(quote, j):
                j += 2 if text[j] == "\\" else 1
            i = j + len(quote)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ExpressionError(f"unclosed `${{` in {text!r}")


def parse_template(text: str) -> Template | None:
    """Parse `${...}` holes in `text`; None when it has no `${`. `$${` is a literal `${`."""
    if "${" not in text:
        return None
    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
        elif text.startswith("${", i):
            end = _hole_end(text, i + 2)
            body = text[i + 2 : end].strip()
            if not body:
                raise ExpressionError(f"empty `${{}}` in {text!r}")
            if literal:
                parts.append(_Part("".join(literal), None))
                literal = []
            secret = SECRET_HOLE.fullmatch(body)
            if secret is not None:
                parts.append(_Part(reference(secret.group(1)), None, secret.group(1)))
            else:
                parts.append(_Part("", compile_expression(body)))
            i = end + 1
        else:
            literal.append(text[i])
            i += 1
    if literal:
        parts.append(_Part("".join(literal), None))
    # A string of escapes alone is still a template: it renders `$${` as `${`.
    return Template(tuple(parts))


@dataclass(frozen=True, slots=True)
class ValueTemplate:
    """A JSON value (object, list, scalar) whose strings may hold templates."""

    value: Any

    def render(self, scope: Mapping[str, Any]) -> Any:
        return _render(self.value, scope)

    def render_request(self, scope: Mapping[str, Any]) -> Any:
        """Rendered for an executor: see `Template.render_request`."""
        return _render_request(self.value, scope)

    def expressions(self) -> Iterator[Expression]:
        yield from _expressions(self.value)

    def secrets(self) -> frozenset[str]:
        """The secrets its templates name."""
        return frozenset(name for t in _templates(self.value) for name in t.secrets)


def compile_value(value: Any) -> ValueTemplate:
    """Compile every template inside a JSON value. Raises ExpressionError at the first bad one."""
    return ValueTemplate(_compile(value))


def _compile(value: Any) -> Any:
    if isinstance(value, str):
        template = parse_template(value)
        return value if template is None else template
    if isinstance(value, Mapping):
        return {k: _compile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v) for v in value]
    return value


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(scope)
    if isinstance(value, dict):
        return {k: _render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, scope) for v in value]
    return value


def _render_request(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render_request(scope)
    if isinstance(value, dict):
        return {k: _render_request(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_request(v, scope) for v in value]
    return escape_dollars(value)


def _templates(value: Any) -> Iterator[Template]:
    if isinstance(value, Template):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _templates(v)


def _expressions(value: Any) -> Iterator[Expression]:
    if isinstance(value, Template):
        yield from value.expressions
    elif isinstance(value, dict):
        for v in value.values():
            yield from _expressions(v)
    elif isinstance(value, list):
        for v in value:
            yield from _expressions(v)
