"""`braidflow keys`: create, list and revoke API keys, straight on Kafka.

Whoever holds the cluster's Kafka credentials holds its keys: these commands take the
same `--broker` / `--kafka-config` / `--prefix` as `braidflow worker` and write to the
keys topic every worker follows, so the first owner key needs no API key of its own.
Owners can do the same through `/api/v1/keys`.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from braidflow.access import DEFAULT_TENANT, Principal, Role, tenant_problem
from braidflow.api_keys import KeyRecord, key_name_problem
from braidflow.config import BROKER_ENV, KAFKA_CONFIG_ENV, Settings, settings_from_env
from braidflow.connectors.audit_writer import write_audit
from braidflow.kafka_connection import KafkaConfigError
from braidflow.streams.key_ring import KeyRing
from braidflow.streams.topics import AUDIT_TOPIC_CONFIG, create_topics

T = TypeVar("T")
READ_KEYS_TIMEOUT_S = 30.0


def _kafka_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--broker", help=f"Kafka bootstrap servers [{BROKER_ENV}, 127.0.0.1:9092]."
            ),
            click.option(
                "--kafka-config",
                type=click.Path(path_type=Path, dir_okay=False),
                help=f"Kafka client properties file (docs/kafka.md) [{KAFKA_CONFIG_ENV}].",
            ),
            click.option("--prefix", help="Topic name prefix of the workers [BRAIDFLOW_PREFIX]."),
        ]
    ):
        command = option(command)
    return command


def _settings(broker: str | None, kafka_config: Path | None, prefix: str | None) -> Settings:
    try:
        return settings_from_env(broker=broker, kafka_config=kafka_config, prefix=prefix)
    except KafkaConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


async def with_keys(settings: Settings, action: Callable[[KeyRing], Awaitable[T]]) -> T:
    """Run `action` on the keys topic, read to its end."""
    topic = NewTopic(
        settings.topics.keys, 1, settings.replication, config={"cleanup.policy": "compact"}
    )
    # The audit topic too: the record of what is done here goes there.
    audit = NewTopic(settings.topics.audit, 1, settings.replication, config=AUDIT_TOPIC_CONFIG)
    await asyncio.to_thread(create_topics, settings, [topic, audit])
    producer = AIOKafkaProducer(**settings.kafka.aiokafka(), acks="all")
    await producer.start()

    async def produce(topic: str, key: bytes, value: bytes) -> int:
        return int((await producer.send_and_wait(topic, value, key=key)).offset)

    ring = KeyRing(settings, produce)
    try:
        await ring.start()
        async with asyncio.timeout(READ_KEYS_TIMEOUT_S):
            await ring.ready.wait()
        return await action(ring)
    finally:
        await ring.stop()
        await producer.stop()


def _run(settings: Settings, action: Callable[[KeyRing], Awaitable[T]]) -> T:
    try:
        return asyncio.run(with_keys(settings, action))
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(f"cannot reach the keys on {settings.broker}: {exc}") from None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _operator() -> str:
    """Who made a key from the command line: the local user."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return "cli"


def _audit(settings: Settings, action: str, record: KeyRecord) -> None:
    """The audit record of a key made or revoked here, as the API would write it: by the
    local user, an owner of the key's tenant (whoever holds the Kafka credentials)."""
    by = Principal(_operator(), record.tenant, {None: Role.OWNER})
    detail = {"role": record.role, "department": record.department, "name": record.name}
    producer = Producer(settings.kafka.confluent())
    try:
        write_audit(
            producer, settings.topics.audit, action, by, target={"key": record.id}, detail=detail
        )
    except Exception as exc:
        raise click.ClickException(
            f"the key is {action.split('_')[0]}d, but its audit record was not written: {exc}"
        ) from None


def key_line(record: KeyRecord) -> str:
    """One key as `keys list` prints it."""
    scope = record.department or "(all departments)"
    state = f"revoked by {record.revoked_by}" if record.revoked else "active"
    return f"{record.id}  {record.tenant}  {record.role:<8}  {scope}  {record.name}  {state}"


@click.group("keys")
def keys() -> None:
    """API keys: create (shown once), list, revoke; straight on Kafka."""


@keys.command("create")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True, help="The key's tenant.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--department", help="The role holds only on this department's workflows.")
@click.option("--name", default="", help="Who or what uses the key (default: key-<id>).")
@_kafka_options
def create(
    tenant: str,
    role: str,
    department: str | None,
    name: str,
    broker: str | None,
    kafka_config: Path | None,
    prefix: str | None,
) -> None:
    """Create a key. The key is printed once, as the last line: keep it, it is stored
    only hashed."""
    problem = tenant_problem(tenant)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--tenant")
    problem = key_name_problem(name)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--name")
    settings = _settings(broker, kafka_config, prefix)

    async def make(ring: KeyRing) -> tuple[str, KeyRecord]:
        return await ring.create(tenant, Role(role), department, name, _now_ms(), _operator())

    key, record = _run(settings, make)
    _audit(settings, "create_key", record)
    click.echo(f"created key {record.id} ({record.name}): {record.role} of tenant {tenant}")
    click.echo("the key is shown only now; keep it:")
    click.echo(key)


@keys.command("list")
@_kafka_options
def list_keys(broker: str | None, kafka_config: Path | None, prefix: str | None) -> None:
    """List every key, revoked ones too (never a key's secret)."""

    async def read(ring: KeyRing) -> list[KeyRecord]:
        return ring.keys()

    found = _run(_settings(broker, kafka_config, prefix), read)
    if not found:
        click.echo("no keys")
    for record in found:
        click.echo(key_line(record))


@keys.command("revoke")
@click.argument("key_id")
@_kafka_options
def revoke(key_id: str, broker: str | None, kafka_config: Path | None, prefix: str | None) -> None:
    """Revoke key KEY_ID (the part after bfk_) on every worker."""

    async def take_back(ring: KeyRing) -> KeyRecord | None:
        return await ring.revoke(key_id, _now_ms(), _operator())

    settings = _settings(broker, kafka_config, prefix)
    revoked = _run(settings, take_back)
    if revoked is None:
        raise click.ClickException(f"no key {key_id!r}")
    _audit(settings, "revoke_key", revoked)
    click.echo(f"revoked key {revoked.id} ({revoked.name})")
