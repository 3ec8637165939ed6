"""Secrets: where a credential's value comes from, and how it is kept out of everything recorded.

A definition names a secret (`${secrets.NAME}` in an http node's url, headers, query or
body; `context.secrets["NAME"]` in a task handler) and never holds its value. Only the
executor looks the value up, at the moment of the call, from a `SecretsProvider`:
`EnvironmentSecrets` (`BRAIDFLOW_SECRET_<NAME>`; another tenant's
`BRAIDFLOW_TENANT_SECRET_<TENANT>__<NAME>`), `DirectorySecrets` (one file per secret, as
Kubernetes mounts a Secret volume; another tenant's under `tenants/<tenant>/`) or one of your
own. What the call produces (a response, an error message, a handler's output or exception)
passes through `Redaction` before it goes anywhere, so a server echoing a header back does
not put the value into the execution's state.

How a reference travels from the definition to the executor, as text, is
`braidflow.topology.secret_references`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from braidflow.access import DEFAULT_TENANT, tenant_problem
from braidflow.tenants import tenant_variable

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What a secret's name may be: an identifier, so `${secrets.NAME}` reads it."""

ENV_PREFIX = "BRAIDFLOW_SECRET_"
TENANT_ENV_PREFIX = "BRAIDFLOW_TENANT_SECRET_"
"""Another tenant's variables: a prefix of their own, since every `BRAIDFLOW_SECRET_<X>` is
the default tenant's secret X, whatever X holds."""
TENANTS_DIR = "tenants"
"""The subdirectory of the secrets directory holding another tenant's, `tenants/<tenant>/`."""


class SecretsProvider(Protocol):
    """Where the values of a tenant's secrets come from. Called by the executor only, at each
    use (so a rotated secret is picked up); it may block briefly (a file read)."""

    def secret(self, tenant: str, name: str) -> str | None:
        """The value of `name` for `tenant`; None when it has none."""
        ...

    def describe(self, tenant: str, name: str) -> str:
        """Where `name` would be looked for, for an error message (never the value)."""
        ...


def secret_variable(tenant: str, name: str) -> str | None:
    """The variable of secret `name` of `tenant` (not the default tenant):
    `BRAIDFLOW_TENANT_SECRET_<TENANT>__<NAME>`, the name as written; None where that
    spelling would be ambiguous (`braidflow.tenants.tenant_variable`), so it fails closed."""
    if not SECRET_NAME.fullmatch(name):
        return None
    return tenant_variable(TENANT_ENV_PREFIX, tenant, name)


class EnvironmentSecrets:
    """Secrets from the worker's environment: the default tenant's `BRAIDFLOW_SECRET_<NAME>`
    (the name as written), another tenant's `secret_variable` (none for the few tenant and
    secret names that have no unambiguous spelling: they fail closed)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def secret(self, tenant: str, name: str) -> str | None:
        if tenant == DEFAULT_TENANT:
            return self._environ.get(ENV_PREFIX + name)
        variable = secret_variable(tenant, name)
        return None if variable is None else self._environ.get(variable)

    def describe(self, tenant: str, name: str) -> str:
        if tenant == DEFAULT_TENANT:
            return f"variable {ENV_PREFIX}{name}"
        variable = secret_variable(tenant, name)
        if variable is None:
            return f"no variable (tenant {tenant!r} and secret {name!r} have no unambiguous one)"
        return f"variable {variable}"


class DirectorySecrets:
    """Secrets from a directory holding one file per secret, named after it, as Kubernetes
    mounts a Secret volume (the files may be symlinks into `..data`): the default tenant's
    `<directory>/<name>`, tenant T's `<directory>/tenants/T/<name>`. Tenant and secret names
    are checked (no `/`, no `.`), so a lookup never leaves its tenant's directory, and the
    default tenant's `tenants` is a directory, never a secret. One trailing newline (`\\n`
    or `\\r\\n`), as `echo` or an editor leaves, is dropped; any other whitespace is kept.
    Read at each use, so a rotated secret is seen at once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, tenant: str, name: str) -> Path | None:
        """The file of `name` of `tenant`; None for a name that is no secret's or tenant's."""
        if not SECRET_NAME.fullmatch(name):
            return None
        if tenant == DEFAULT_TENANT:
            return self.directory / name
        if tenant_problem(tenant) is not None:
            return None
        return self.directory / TENANTS_DIR / tenant / name

    def secret(self, tenant: str, name: str) -> str | None:
        path = self.path(tenant, name)
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text

    def describe(self, tenant: str, name: str) -> str:
        path = self.path(tenant, name)
        if path is None:
            return f"no file (secret {name!r} of tenant {tenant!r} has none)"
        return f"file {path}"


class ChainedSecrets:
    """The first provider that has the secret wins."""

    def __init__(self, providers: Iterable[SecretsProvider]) -> None:
        self.providers = tuple(providers)

    def secret(self, tenant: str, name: str) -> str | None:
        for provider in self.providers:
            value = provider.secret(tenant, name)
            if value is not None:
                return value
        return None

    def describe(self, tenant: str, name: str) -> str:
        return ", ".join(p.describe(tenant, name) for p in self.providers) or "no provider"


def provider_for(directory: Path | None) -> SecretsProvider:
    """The worker's provider: the environment, then `directory` when given."""
    providers: list[SecretsProvider] = [EnvironmentSecrets()]
    if directory is not None:
        providers.append(DirectorySecrets(directory))
    return ChainedSecrets(providers)


class SecretError(Exception):
    """A secret that is not set or not allowed; fails the node with `type`. Names the secret,
    never a value."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


class Redaction:
    """The values looked up for one call, and how to take them out of what the call produced.

    Each value is replaced by `[secrets.NAME]`, as written and URL-quoted (an error message
    quoting a URL). A transformed value (base64 of `user:password`, a hash) is not
    recognised: a handler must not return or raise one."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        if value:
            self._values[value] = name
            quoted = quote(value, safe="")
            if quoted != value:
                self._values[quoted] = name

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, text: str) -> str:
        """`text` with every value replaced; the longest first, so one inside another is whole."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, f"[secrets.{self._values[value]}]")
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string (keys too) redacted."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


@dataclass(frozen=True, slots=True)
class SecretsAllowed:
    """Which of its tenant's secrets a workflow may use (docs/secrets.md, "Whose secrets").

    `listed`: the credentials its department lists; then only those. None (its department
    lists none, is not deployed as a definition, or it has none): any secret but those some
    department lists, `claimed` (secret name -> the departments listing it). An install that
    lists no credentials therefore allows every secret, as before departments had lists."""

    listed: frozenset[str] | None = None
    claimed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def refusal(self, name: str, department: str | None) -> str | None:
        """Why `name` may not be used by a workflow of `department`; None when it may."""
        if self.listed is not None:
            if name in self.listed:
                return None
            listed = ", ".join(repr(n) for n in sorted(self.listed)) or "none"
            return (
                f"secret {name!r} is not among the credentials department {department!r}"
                f" lists (it lists: {listed})"
            )
        owners = self.claimed.get(name)
        if not owners:
            return None
        who = "a workflow of no department"
        if department is not None:
            who = f"a workflow of department {department!r}, which lists no credentials,"
        return (
            f"secret {name!r} is a credential of department"
            f"{'s' if len(owners) > 1 else ''} {', '.join(repr(o) for o in owners)}:"
            f" {who} may not use it"
        )


def credentials_allowed(
    department: str | None, lists: Mapping[str, frozenset[str] | None]
) -> SecretsAllowed:
    """What a workflow of `department` may use, given each deployed department's
    `credentials` list (None for one that has no list)."""
    own = lists.get(department) if department is not None else None
    if own is not None:
        return SecretsAllowed(listed=own)
    claimed: dict[str, list[str]] = {}
    for owner, names in sorted(lists.items()):
        for name in names or ():
            claimed.setdefault(name, []).append(owner)
    return SecretsAllowed(claimed={name: tuple(o) for name, o in claimed.items()})


AllowedSecrets = Callable[[str, str | None], SecretsAllowed]
"""`allowed(tenant, department)`: the secrets a workflow of that department may use."""


def every_secret(tenant: str, department: str | None) -> SecretsAllowed:
    """The `AllowedSecrets` of an install without department definitions: no limit."""
    return SecretsAllowed()


@dataclass(slots=True)
class SecretScope:
    """The secrets one task may read: its tenant's, as far as `allowed` lets a workflow of
    `department` use them. Every value read is added to `redaction`."""

    provider: SecretsProvider
    tenant: str = DEFAULT_TENANT
    allowed: SecretsAllowed = field(default_factory=SecretsAllowed)
    department: str | None = None
    redaction: Redaction = field(default_factory=Redaction)

    def lookup(self, name: str) -> str:
        """The value of `name`; SecretError naming it when it is not allowed or not set."""
        refusal = self.allowed.refusal(name, self.department)
        if refusal is not None:
            raise SecretError("SecretNotAllowed", refusal)
        value = self.provider.secret(self.tenant, name)
        if value is None:
            raise SecretError(
                "SecretNotFound",
                f"secret {name!r} is not set for tenant {self.tenant!r}"
                f" (looked for: {self.provider.describe(self.tenant, name)})",
            )
        self.redaction.add(name, value)
        return value


class TaskSecrets:
    """`context.secrets` of a task handler: `context.secrets["NAME"]` gives the value of a
    secret of the execution's tenant (failing the node with SecretNotFound or
    SecretNotAllowed naming it), `context.secrets.get("NAME")` None when it is not set."""

    __slots__ = ("_scope",)

    def __init__(self, scope: SecretScope | None = None) -> None:
        self._scope = scope

    def __getitem__(self, name: str) -> str:
        if self._scope is None:
            raise SecretError("SecretNotFound", f"secret {name!r}: no secrets here")
        return self._scope.lookup(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except SecretError as exc:
            if exc.type == "SecretNotFound":
                return default
            raise

    def __repr__(self) -> str:
        return "<secrets>"
