"""Where a tenant's things live: its events topics, its catalog keys, its wait keys.

The default tenant keeps every name braidflow had before tenants: events on
`<events_prefix><segment>` (`events.ticket`), workflows under their id, waits under the
event type. Tenant T's events live on `tenants.T.<events_prefix><segment>`
(`tenants.acme.events.ticket`), so a cluster's PREFIXED ACL on `tenants.acme.` covers
exactly T's topics: tenant names hold no dot, so neither `events.*` nor
`tenants.acme-eu.*` falls under it. `tenants.default.*` is refused: the default tenant
has one spelling. The tenant of an event comes from its topic alone. Pure.
"""

from __future__ import annotations

import re

from braidflow.access import DEFAULT_TENANT, tenant_problem

TENANTS_TOPIC_PREFIX = "tenants."
# The characters of a tenant name (access.tenant_problem); the length is checked apart,
# since librdkafka's subscription regex has no counted repetition.
_TENANT_CHARS = "[a-z][a-z0-9-]*"


class TenantTopicError(ValueError):
    """A topic under `tenants.` that names no tenant braidflow may route for."""


def events_prefix_for(tenant: str, events_prefix: str = "events.") -> str:
    """The prefix of `tenant`'s events topics: `events.` or `tenants.T.events.`."""
    if tenant == DEFAULT_TENANT:
        return events_prefix
    problem = tenant_problem(tenant)
    if problem is not None:
        raise ValueError(problem)
    return f"{TENANTS_TOPIC_PREFIX}{tenant}.{events_prefix}"


def events_topics_regex(events_prefix: str = "events.") -> str:
    """A librdkafka subscription regex for the events topics of every tenant.

    `^(events\\.|tenants\\.[a-z][a-z0-9-]*\\.events\\.)[a-zA-Z0-9_-]+$`: a plain group, as
    librdkafka refuses `(?:`.
    """
    escaped = re.escape(events_prefix)
    tenant = re.escape(TENANTS_TOPIC_PREFIX) + _TENANT_CHARS + r"\." + escaped
    return f"^({escaped}|{tenant})[a-zA-Z0-9_-]+$"


def tenant_of_topic(topic: str, events_prefix: str = "events.") -> str:
    """The tenant whose events topic `topic` is; TenantTopicError for `tenants.default.*`
    or a tenant name braidflow refuses."""
    if not topic.startswith(TENANTS_TOPIC_PREFIX):
        return DEFAULT_TENANT
    tenant, _, rest = topic.removeprefix(TENANTS_TOPIC_PREFIX).partition(".")
    if tenant == DEFAULT_TENANT:
        raise TenantTopicError(
            f"topic {topic!r}: the default tenant's events live on {events_prefix}<segment>,"
            f" never under {TENANTS_TOPIC_PREFIX}{DEFAULT_TENANT}."
        )
    problem = tenant_problem(tenant)
    if problem is not None or not rest.startswith(events_prefix):
        raise TenantTopicError(f"topic {topic!r}: {problem or 'not a tenant events topic'}")
    return tenant


def owner_of_topic(topic: str) -> str:
    """Whose topic `topic` is by its name alone, whatever the events prefix: T's under
    `tenants.T.`, else the default tenant's (braidflow's own topics, `events.*`, and names
    under `tenants.` that name no tenant)."""
    tenant, dot, _ = topic.removeprefix(TENANTS_TOPIC_PREFIX).partition(".")
    if not topic.startswith(TENANTS_TOPIC_PREFIX) or not dot or tenant_problem(tenant):
        return DEFAULT_TENANT
    return tenant


def catalog_key(tenant: str, workflow_id: str) -> str:
    """The key of a workflow (or department) in the catalog: its id in the default tenant,
    `T/<id>` in tenant T (ids and tenant names hold no `/`)."""
    return workflow_id if tenant == DEFAULT_TENANT else f"{tenant}/{workflow_id}"


def split_catalog_key(key: str) -> tuple[str, str]:
    """(tenant, id) of a catalog key."""
    tenant, slash, workflow_id = key.partition("/")
    return (tenant, workflow_id) if slash else (DEFAULT_TENANT, key)


def wait_key(tenant: str, event_type: str) -> str:
    """The waits topic key of a tenant's event type: the type itself in the default tenant,
    `@T/<type>` in tenant T (an event type never starts with `@`)."""
    return event_type if tenant == DEFAULT_TENANT else f"@{tenant}/{event_type}"


def tenant_of_wait_key(key: str) -> str:
    """The tenant a waits topic key (`wait_key`) belongs to."""
    if not key.startswith("@"):
        return DEFAULT_TENANT
    return key[1:].partition("/")[0]


def tenant_variable(prefix: str, tenant: str, name: str) -> str | None:
    """The environment variable `<prefix><TENANT>__<name>` of another tenant's `name`: the
    tenant upper-cased with `-` as `_`, `name` as the caller spells it. None for the default
    tenant, and where that spelling could also be read as another tenant's or another
    name's: a tenant ending in `-` or holding `--`, a name starting with `_` or holding `__`
    (tenant `a-`'s `X` and tenant `a`'s `_X` would both be `A___X`). Every variable given
    thus holds exactly one `__`, between underscore-free neighbours: one tenant, one name."""
    if (
        tenant == DEFAULT_TENANT
        or tenant_problem(tenant) is not None
        or tenant.endswith("-")
        or "--" in tenant
        or not name
        or name.startswith("_")
        or "__" in name
    ):
        return None
    return f"{prefix}{tenant.upper().replace('-', '_')}__{name}"
