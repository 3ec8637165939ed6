"""The catalog and the router by tenant: two tenants deploy one workflow id as two
workflows; another tenant's records carry no `id`, so workers older than tenants skip them;
an event is matched against its own tenant's triggers and waits only; a publish node's
event and a wait registration go to their tenant's topic and key; a schedule starts its
own tenant's workflow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from typing import Any

from braidflow.access import DEFAULT_TENANT
from braidflow.config import Settings
from braidflow.engine import AwaitEvent, PublishEvent, StartExecution
from braidflow.engine.ids import execution_id_for
from braidflow.schemas import decode_transition
from braidflow.streams.catalog import Catalog
from braidflow.streams.outbox import outbox_entry
from braidflow.streams.router import EventRouter, Happened
from braidflow.streams.schedules import Scheduler
from braidflow.topology.version_numbers import VersionNumbers

T0 = 1_795_000_000_000


def listener(who: str) -> str:
    return (
        "id: onboarding\n"
        "triggers:\n  - event: {types: [user.created]}\n"
        "nodes:\n"
        "  - {id: wait, type: wait_event, params: {type: user.verified}}\n"
        f"  - {{id: done, type: end, params: {{output: {{who: {who}}}}}}}\n"
        "edges:\n  - {from: wait, to: done}\n"
    )


def record(text: str, tenant: str, proposal: str) -> dict[str, Any]:
    found: dict[str, Any] = {
        "text": text,
        "deployed_at": T0,
        "deployed_by": "ana",
        "proposal": proposal,
    }
    if tenant == DEFAULT_TENANT:
        found.update(id="onboarding", version=1)
    else:
        found.update(tenant=tenant, workflow="onboarding")
    return found


async def catalog_of(records: list[dict[str, Any]]) -> Catalog:
    async def produce(*_: Any) -> None:
        raise AssertionError("nothing is written")

    catalog = Catalog(Settings(), produce)
    for value in records:
        # What the catalog's FollowedTopic hands it for each record of the workflows topic.
        await catalog._apply(json.dumps(value).encode(), T0)
    return catalog


async def test_two_tenants_deploy_one_id_as_two_workflows() -> None:
    catalog = await catalog_of(
        [
            record(listener("default"), DEFAULT_TENANT, "p1"),
            record(listener("acme"), "acme", "p2"),
            record(listener("acme, again"), "acme", "p3"),
        ]
    )
    default, acme = catalog.latest("onboarding"), catalog.latest("acme/onboarding")
    assert default is not None and (default.tenant, default.version) == (DEFAULT_TENANT, 1)
    assert acme is not None and (acme.tenant, acme.workflow_id, acme.version) == (
        "acme",
        "onboarding",
        2,
    )
    assert [d.key for d in catalog.all_latest("acme")] == ["acme/onboarding"]
    assert [d.key for d in catalog.all_latest()] == ["onboarding"]
    assert catalog.all_latest("globex") == []
    assert catalog.tenants() == [DEFAULT_TENANT, "acme"]


def test_workers_older_than_tenants_skip_another_tenants_records() -> None:
    numbers = VersionNumbers()
    assert numbers.read(record(listener("acme"), "acme", "p1")) is None
    assert numbers.head("onboarding") == 0


async def test_an_event_starts_and_resumes_only_its_own_tenants_executions() -> None:
    catalog = await catalog_of(
        [
            record(listener("default"), DEFAULT_TENANT, "p1"),
            record(listener("acme"), "acme", "p2"),
        ]
    )
    sent: list[tuple[str, bytes, bytes]] = []

    async def send(
        topic: str, key: bytes, value: bytes, headers: object = None
    ) -> asyncio.Future[None]:
        sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def dead_letter(_: Any) -> None:
        raise AssertionError("no dead letter")

    settings = Settings()
    router = EventRouter(settings, catalog, send, dead_letter, lambda: T0)
    event = {"specversion": "1.0", "id": "e1", "source": "/users", "type": "user.created"}
    await router.route(event, Happened(T0 + 1000, tenant="acme"))
    [(_, _, value)] = [s for s in sent if s[0] == settings.topics.transitions]
    start = decode_transition(value)
    assert isinstance(start, StartExecution)
    assert (start.workflow_id, start.tenant) == ("onboarding", "acme")
    sent.clear()
    verified = {**event, "id": "e2", "type": "user.verified"}
    await router.route(verified, Happened(T0 + 1000, tenant="acme"))
    assert [(t, k) for t, k, _ in sent] == [(settings.topics.waits, b"@acme/user.verified")]
    sent.clear()
    await router.route(event, Happened(T0 + 1000, tenant="globex"))
    await router.route(verified, Happened(T0 + 1000, tenant="globex"))
    assert sent == []


def test_a_publish_node_and_a_wait_of_another_tenant_go_to_its_topic_and_key() -> None:
    published = PublishEvent("p", "ex", "w", "tell", T0, "ticket.done", tenant="acme")
    entry = outbox_entry(published, "events.", "ex")
    assert entry.topic == "tenants.acme.events.ticket"
    wait = AwaitEvent("a", "ex", "w", 1, "wait", "ticket.resolved", T0, tenant="acme")
    assert outbox_entry(wait, "events.", "ex").key == b"@acme/ticket.resolved"
    default = outbox_entry(PublishEvent("p", "ex", "w", "tell", T0, "ticket.done"), "events.", "ex")
    assert default.topic == "events.ticket"


async def test_a_schedule_starts_its_own_tenants_workflow() -> None:
    text = (
        "id: report\ntriggers:\n  - schedule: {cron: '* * * * *'}\n"
        "nodes:\n  - {id: done, type: end}\nedges: []\n"
    )
    value = {"text": text, "deployed_at": T0, "proposal": "p1", "tenant": "acme"}
    catalog = await catalog_of([{**value, "workflow": "report"}])
    started: list[tuple[str, str]] = []

    async def start_for(key: str, event: Mapping[str, Any]) -> tuple[str, Awaitable[Any]]:
        started.append((key, str(event["id"])))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return "x", done

    settings = Settings()
    scheduler = Scheduler(
        settings,
        catalog,
        start_for,
        execution_id_for,
        lambda: set(range(settings.partitions)),
        set(),
        lambda: T0 + 60_000,
    )
    await scheduler.tick()
    assert started and {key for key, _ in started} == {"acme/report"}
