"""Where a tenant's things live (braidflow.tenants): the default tenant keeps every name it
had; another tenant's events topics sit under `tenants.T.`, a prefix a cluster's PREFIXED
ACL can grant without reaching the default tenant's topics or another tenant's."""

from __future__ import annotations

import re
import uuid

import pytest

from braidflow.access import DEFAULT_TENANT
from braidflow.engine.ids import execution_id_for
from braidflow.schemas.cloudevents import topic_for
from braidflow.tenants import (
    TenantTopicError,
    catalog_key,
    events_prefix_for,
    events_topics_regex,
    owner_of_topic,
    split_catalog_key,
    tenant_of_topic,
    tenant_of_wait_key,
    wait_key,
)

EVENT = {"source": "/shop", "id": "o-1"}


def test_the_default_tenant_keeps_its_topics_keys_and_ids() -> None:
    assert topic_for("ticket.created", events_prefix_for(DEFAULT_TENANT)) == "events.ticket"
    assert catalog_key(DEFAULT_TENANT, "onboarding") == "onboarding"
    assert wait_key(DEFAULT_TENANT, "ticket.resolved") == "ticket.resolved"
    # The id every execution started for this event had before tenants.
    expected = uuid.uuid5(uuid.UUID("6f1c1d57-6a43-4b8e-9d0e-3f0b2f3c9a11"), "/shop\no-1\nship")
    assert execution_id_for(EVENT, "ship") == execution_id_for(EVENT, "ship", DEFAULT_TENANT)
    assert execution_id_for(EVENT, "ship") == expected.hex


def test_another_tenant_has_topics_keys_and_ids_of_its_own() -> None:
    assert topic_for("ticket.created", events_prefix_for("acme")) == "tenants.acme.events.ticket"
    assert catalog_key("acme", "onboarding") == "acme/onboarding"
    assert split_catalog_key("acme/onboarding") == ("acme", "onboarding")
    assert split_catalog_key("onboarding") == (DEFAULT_TENANT, "onboarding")
    assert wait_key("acme", "ticket.resolved") == "@acme/ticket.resolved"
    assert tenant_of_wait_key("@acme/ticket.resolved") == "acme"
    assert tenant_of_wait_key("ticket.resolved") == DEFAULT_TENANT
    ids = {execution_id_for(EVENT, "ship", t) for t in (DEFAULT_TENANT, "acme", "globex")}
    assert len(ids) == 3
    assert execution_id_for(EVENT, "ship", "acme") == execution_id_for(EVENT, "ship", "acme")


@pytest.mark.parametrize(
    ("topic", "tenant"),
    [
        ("events.ticket", DEFAULT_TENANT),
        ("tenants.acme.events.ticket", "acme"),
        ("tenants.acme-eu.events.ticket", "acme-eu"),
    ],
)
def test_the_router_follows_every_tenants_events_topics_and_knows_whose_each_is(
    topic: str, tenant: str
) -> None:
    assert re.fullmatch(events_topics_regex(), topic)
    assert tenant_of_topic(topic) == tenant


@pytest.mark.parametrize(
    "topic",
    ["events.ticket.dlq", "tenants.acme.events.ticket.retry", "tenants.Acme.events.x", "bf.tasks"],
)
def test_topics_beside_the_events_topics_are_not_followed(topic: str) -> None:
    assert re.fullmatch(events_topics_regex(), topic) is None


def test_the_default_tenant_has_one_spelling_and_a_bad_tenant_name_none() -> None:
    with pytest.raises(TenantTopicError, match=r"never under tenants\.default\."):
        tenant_of_topic("tenants.default.events.ticket")
    with pytest.raises(TenantTopicError, match="lowercase"):
        tenant_of_topic("tenants.9lives.events.ticket")
    with pytest.raises(ValueError, match="lowercase"):
        events_prefix_for("Acme")


def test_whose_topic_a_name_says_whatever_the_events_prefix() -> None:
    assert owner_of_topic("tenants.acme.prod-events.ticket") == "acme"
    for topic in ("events.ticket", "bf.transitions", "tenants.default.events.x", "tenants.X.e"):
        assert owner_of_topic(topic) == DEFAULT_TENANT


def test_a_tenants_acl_prefix_covers_its_topics_and_no_other() -> None:
    prefix = "tenants.acme."
    assert topic_for("ticket.created", events_prefix_for("acme")).startswith(prefix)
    for other in ("acme-eu", "acmecorp", DEFAULT_TENANT):
        assert not topic_for("ticket.created", events_prefix_for(other)).startswith(prefix)
