"""The edges by tenant: a tenant's webhook opens only with its own secret (never the default
tenant's shared one), and a service's EventPublisher of a tenant writes to its topics."""

from __future__ import annotations

import pytest

from braidflow.client import EventPublisher
from braidflow.connectors.api.errors import Unauthorized
from braidflow.connectors.api.events import webhook_secret


def test_a_tenants_webhook_has_only_its_own_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_WEBHOOK_SECRET", "shared")
    monkeypatch.setenv("BRAIDFLOW_WEBHOOK_SECRET_ORDERS", "default-orders")
    assert webhook_secret("orders") == b"default-orders"
    assert webhook_secret("refunds") == b"shared"
    assert webhook_secret("orders", "acme") is None
    monkeypatch.setenv("BRAIDFLOW_TENANT_WEBHOOK_SECRET_ACME_EU__ORDERS", "acme-orders")
    assert webhook_secret("orders", "acme-eu") == b"acme-orders"
    assert webhook_secret("orders") == b"default-orders"


def test_no_webhook_secret_of_a_tenant_is_also_another_tenants_or_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The default tenant's hook `acme-eu--orders` is spelt like acme-eu's `orders` under the
    # default prefix; tenant `acme-`'s `x` like tenant `acme`'s `_x` under any one prefix.
    monkeypatch.setenv("BRAIDFLOW_WEBHOOK_SECRET_ACME_EU__ORDERS", "default-hook")
    assert webhook_secret("acme-eu--orders") == b"default-hook"
    assert webhook_secret("orders", "acme-eu") is None
    # Refused rather than left unsigned: a secret set for either would open both.
    monkeypatch.setenv("BRAIDFLOW_TENANT_WEBHOOK_SECRET_ACME___X", "whose")
    for name, tenant in (("x", "acme-"), ("_x", "acme")):
        with pytest.raises(Unauthorized, match="no unambiguous secret variable"):
            webhook_secret(name, tenant)


def test_an_event_publisher_of_a_tenant_writes_to_its_topics() -> None:
    publisher = EventPublisher("127.0.0.1:9", source="/orders", tenant="acme")
    assert publisher.topic_prefix == "tenants.acme.events."
    assert EventPublisher("127.0.0.1:9", source="/orders").topic_prefix == "events."
    with pytest.raises(ValueError, match="lowercase"):
        EventPublisher("127.0.0.1:9", source="/orders", tenant="Acme")
