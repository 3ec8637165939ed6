"""Runtime settings of a braidflow worker, from the command line or `BRAIDFLOW_*` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names, all under one prefix so several deployments can share a cluster."""

    prefix: str

    @property
    def transitions(self) -> str:
        return f"{self.prefix}.transitions"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}.tasks"

    @property
    def lifecycle(self) -> str:
        return f"{self.prefix}.lifecycle"

    @property
    def workflows(self) -> str:
        return f"{self.prefix}.workflows"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def waits(self) -> str:
        """Wait registrations and the events they wait for, keyed by event type."""
        return f"{self.prefix}.waits"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs to know. Defaults suit a production Apache Kafka.

    `fetch_max_wait_ms` and `rebalance_timeout_s` set how long a fetch and a group
    join may wait; dev mode and tests lower both (see `for_dev`). The consumers
    nothing waits on hop by hop (the catalog and the read models) fetch with
    `background_fetch_wait_ms`: a broker that holds a fetch for its whole wait
    (the embedded one does) would otherwise answer them hundreds of times a
    second, and on a small machine that CPU is taken from the transitions.
    Domain events live on `<events_prefix><first segment of the type>` topics.
    An event nobody waits for yet is kept `event_ttl_s` for a wait_event that
    begins later. An event triggers only workflows whose trigger was deployed
    before it happened, by record timestamps, allowing its producer's clock to
    lag by `event_clock_skew_s` (`topology.deployed_before`). A schedule slot
    missed while no worker ran still fires on start when it is at most
    `schedule_grace_s` old; older ones are skipped.
    No record a worker writes may exceed `max_record_bytes` (keep it at or below
    the broker's `message.max.bytes`): a task output or an execution state that
    would fails its node or execution with a reason instead of stopping a partition.
    `max_poll_interval_s` stays long everywhere: a consumer that falls behind
    under load must not be thrown out of its group (a revoke under load is
    costly and, with the orchestrator busy, slow to recover from).
    `rocksdb_block_cache_bytes` and `rocksdb_write_buffer_bytes` are per table,
    shared out among its partitions (each is a RocksDB database with caches and
    memtables of its own), at least 1 MiB each: sized per partition, 32
    partitions' worth of memtables grew a worker by 400 MiB.
    """

    broker: str = "127.0.0.1:9092"
    prefix: str = "braidflow"
    partitions: int = 8
    replication: int = 1
    data_dir: Path = Path(".braidflow")
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    advertised_api_url: str | None = None
    task_concurrency: int = 16
    fetch_max_wait_ms: int = 100
    background_fetch_wait_ms: int = 500
    rebalance_timeout_s: float = 10.0
    session_timeout_s: float = 10.0
    max_poll_interval_s: float = 300.0
    handler_modules: tuple[str, ...] = field(default_factory=tuple)
    rocksdb_block_cache_bytes: int = 64 * 1024 * 1024
    rocksdb_write_buffer_bytes: int = 32 * 1024 * 1024
    events_prefix: str = "events."
    event_ttl_s: float = 3600.0
    event_clock_skew_s: float = 2.0
    schedule_grace_s: float = 300.0
    clock_offset_file: Path | None = None
    max_record_bytes: int = 1_000_000

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    @property
    def max_value_bytes(self) -> int:
        """The largest record value a worker writes: `max_record_bytes` less room for the
        key, headers and batch framing."""
        return self.max_record_bytes - 16 * 1024

    @property
    def api_url(self) -> str:
        """Where other workers reach this worker's API (to forward reads of executions it holds)."""
        return self.advertised_api_url or f"http://{self.api_host}:{self.api_port}"

    def for_dev(self, embedded: bool = True) -> Settings:
        """Defaults for dev mode: short fetch waits and fewer partitions.

        Only the embedded broker gets fast group joins too (a join there waits about
        as long as the rebalance timeout, DESIGN.md); it does not check group limits.
        On another broker (`braidflow dev --broker`) the group settings stay those of
        production, which a default Apache Kafka accepts (`group_limit_problems`).
        """
        dev = replace(
            self,
            partitions=min(self.partitions, 4),
            fetch_max_wait_ms=5,
            background_fetch_wait_ms=100,
        )
        return replace(dev, rebalance_timeout_s=3.0, session_timeout_s=5.0) if embedded else dev


# Apache Kafka's default group.min.session.timeout.ms and group.max.session.timeout.ms:
# a join asking for a session timeout outside them is refused for good.
APACHE_KAFKA_SESSION_TIMEOUT_S = (6.0, 1800.0)


def group_limit_problems(settings: Settings) -> list[str]:
    """Why a default Apache Kafka would refuse the consumer groups of `settings` (none: [])."""
    low, high = APACHE_KAFKA_SESSION_TIMEOUT_S
    problems = []
    session = settings.session_timeout_s
    if not low <= session <= high:
        problems.append(
            f"session timeout {session:g} s is outside {low:g} s .. {high / 60:g} min"
            " (group.min.session.timeout.ms .. group.max.session.timeout.ms)"
        )
    # librdkafka (the event router) refuses a max.poll.interval below the session timeout.
    if settings.max_poll_interval_s < session:
        problems.append(
            f"max poll interval {settings.max_poll_interval_s:g} s is below the session timeout"
        )
    if settings.rebalance_timeout_s <= 0:
        problems.append("rebalance timeout must be positive")
    return problems


def _env(name: str) -> str | None:
    value = os.environ.get(f"BRAIDFLOW_{name}")
    return value if value else None


def settings_from_env(defaults: Settings | None = None, **overrides: object) -> Settings:
    """Settings from `BRAIDFLOW_*` variables over `defaults`; keyword overrides (not None) win."""
    values: dict[str, object] = {}
    conversions = {
        "BROKER": ("broker", str),
        "PREFIX": ("prefix", str),
        "PARTITIONS": ("partitions", int),
        "REPLICATION": ("replication", int),
        "DATA_DIR": ("data_dir", Path),
        "API_HOST": ("api_host", str),
        "API_PORT": ("api_port", int),
        "ADVERTISED_API_URL": ("advertised_api_url", str),
        "TASK_CONCURRENCY": ("task_concurrency", int),
        "FETCH_MAX_WAIT_MS": ("fetch_max_wait_ms", int),
        "BACKGROUND_FETCH_WAIT_MS": ("background_fetch_wait_ms", int),
        "REBALANCE_TIMEOUT_S": ("rebalance_timeout_s", float),
        "SESSION_TIMEOUT_S": ("session_timeout_s", float),
        "MAX_POLL_INTERVAL_S": ("max_poll_interval_s", float),
        "EVENTS_PREFIX": ("events_prefix", str),
        "EVENT_TTL_S": ("event_ttl_s", float),
        "EVENT_CLOCK_SKEW_S": ("event_clock_skew_s", float),
        "SCHEDULE_GRACE_S": ("schedule_grace_s", float),
        "CLOCK_OFFSET_FILE": ("clock_offset_file", Path),
        "MAX_RECORD_BYTES": ("max_record_bytes", int),
    }
    for env_name, (attr, convert) in conversions.items():
        raw = _env(env_name)
        if raw is not None:
            try:
                values[attr] = convert(raw)
            except ValueError:
                raise ValueError(f"BRAIDFLOW_{env_name}={raw!r} is not a valid {attr}") from None
    handlers = _env("HANDLERS")
    if handlers:
        values["handler_modules"] = tuple(m.strip() for m in handlers.split(",") if m.strip())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(defaults or Settings(), **values)  # type: ignore[arg-type]
