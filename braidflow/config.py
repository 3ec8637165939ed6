"""Runtime settings of a braidflow worker, from the command line or `BRAIDFLOW_*` variables."""

from __future__ import annotations

import os
import typing
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from braidflow import event_loop
from braidflow.kafka_connection import KafkaConnection, kafka_connection


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
    def audit(self) -> str:
        """Audit records: who changed or decided what (`braidflow.schemas.audit`)."""
        return f"{self.prefix}.audit"

    @property
    def keys(self) -> str:
        """API keys and their revocations (hashed, never the key), keyed by key id."""
        return f"{self.prefix}.keys"

    @property
    def waits(self) -> str:
        """Wait registrations and the events they wait for, keyed by event type."""
        return f"{self.prefix}.waits"

    @property
    def logs(self) -> str:
        """What task handlers logged, one record per node run, keyed by execution id."""
        return f"{self.prefix}.logs"

    @property
    def stats(self) -> str:
        """Stats observations re-keyed by workflow and department (`streams/stats.py`)."""
        return f"{self.prefix}.stats"

    @property
    def admissions(self) -> str:
        """Requests for and releases of slots under department caps, keyed `<tenant>/<department>`."""
        return f"{self.prefix}.admissions"


def _about(help: str, *, env: str = "", option: str = "") -> dict[str, str]:
    """A settings field's help, `BRAIDFLOW_*` variable and CLI option (by default named
    after the field: `api_port`, BRAIDFLOW_API_PORT, --api-port)."""
    return {"help": help, "env": env, "option": option}


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""How a `read_model` URL starts."""

CONSUMER_QUEUE_KIB = 4 * 1024
"""What a worker's confluent-kafka consumer fetches ahead of its reader, at most
(`queued.max.messages.kbytes`; librdkafka's default, 64 MiB, is per consumer). The readers
of the lifecycle topic fall behind while a worker fires a backlog of timers, and each then
held up to its whole default in fetched records: memory the worker kept after the backlog."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs to know. Defaults suit a production Apache Kafka.

    `fetch_max_wait_ms` and `rebalance_timeout_s` set how long a fetch and a group
    join may wait; dev mode and tests lower both (see `for_dev`). The consumers
    nothing waits on hop by hop (the catalog and the read models) fetch with
    `background_fetch_wait_ms`: a broker that holds a fetch for its whole wait
    (the embedded one does) would otherwise answer them hundreds of times a
    second, and on a small machine that CPU is taken from the transitions.
    Faust's consumer (the admissions, waits and stats agents; the transitions have a reader
    of their own) fetches with `agent_fetch_wait_ms`, in dev mode too: what it reads is an
    admission or an awaited event now and then, which can wait that long on such a broker.
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
    memtables of its own), at least 256 KiB each: sized per partition, 32
    partitions' worth of memtables grew a worker by 400 MiB. 8 MiB each: a row
    not in the block cache is read from the page cache, and 64 MiB of cache per
    table (7 tables) held 64 MiB for 100,000 parked executions.
    Bearer tokens of an identity provider are accepted when `jwks_url` is set
    (`connectors/identity.py`, docs/identity-providers.md).
    """

    # Given by --broker and --kafka-config, not a variable of its own (`settings_from_env`).
    kafka: KafkaConnection = field(default_factory=KafkaConnection)
    prefix: str = field(default="braidflow", metadata=_about("Topic name prefix."))
    partitions: int = field(default=8, metadata=_about("Partitions per topic (dev: 4)."))
    replication: int = field(
        default=1, metadata=_about("Replication factor of the topics braidflow creates.")
    )
    data_dir: Path = field(
        default=Path(".braidflow"), metadata=_about("Local state: RocksDB tables, read models.")
    )
    read_model: str | None = field(
        default=None,
        metadata=_about(
            "Where the read models live: unset, SQLite files in the data dir; a postgresql://"
            " URL, one PostgreSQL database all workers share."
        ),
    )
    api_host: str = field(default="127.0.0.1", metadata=_about("API listen address."))
    api_port: int = field(default=8080, metadata=_about("API port."))
    advertised_api_url: str | None = field(
        default=None,
        metadata=_about(
            "URL other workers use to reach this API (default http://API_HOST:API_PORT)."
        ),
    )
    task_concurrency: int = field(default=16, metadata=_about("Tasks a worker runs at once."))
    fetch_max_wait_ms: int = field(
        default=100, metadata=_about("How long a fetch may wait for records (dev: 5).")
    )
    background_fetch_wait_ms: int = field(
        default=500, metadata=_about("Fetch wait of the catalog and the read models (dev: 100).")
    )
    agent_fetch_wait_ms: int = field(
        default=100,
        metadata=_about("Fetch wait of Faust's consumer: the admissions, waits and stats agents."),
    )
    rebalance_timeout_s: float = field(
        default=10.0, metadata=_about("Consumer group rebalance timeout.")
    )
    session_timeout_s: float = field(
        default=10.0, metadata=_about("Consumer group session timeout.")
    )
    heartbeat_interval_s: float = field(
        default=0.0,
        metadata=_about(
            "Consumer group heartbeat interval, below the session timeout (0: a quarter of the"
            " session timeout, at most 1 s on the embedded broker)."
        ),
    )
    max_poll_interval_s: float = field(
        default=300.0, metadata=_about("Longest time between two polls of a consumer.")
    )
    handler_modules: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            "Module (dotted name or .py file) registering task handlers; repeatable"
            " (the variable: comma separated).",
            env="HANDLERS",
            option="--handlers",
        ),
    )
    rocksdb_block_cache_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata=_about("RocksDB block cache per table, shared by its partitions."),
    )
    rocksdb_write_buffer_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata=_about("RocksDB write buffer per table, shared by its partitions."),
    )
    events_prefix: str = field(
        default="events.", metadata=_about("Prefix of the domain events topics.")
    )
    event_ttl_s: float = field(
        default=3600.0, metadata=_about("How long an event nobody waits for yet is kept.")
    )
    event_clock_skew_s: float = field(
        default=2.0,
        metadata=_about("How far an event producer's clock may lag behind the deployments'."),
    )
    schedule_grace_s: float = field(
        default=300.0,
        metadata=_about(
            "How old a schedule slot missed while no worker ran may be and still fire."
        ),
    )
    secrets_dir: Path | None = field(
        default=None,
        metadata=_about(
            "Directory of secrets, one file per secret named after it (a Kubernetes Secret"
            " volume); BRAIDFLOW_SECRET_<NAME> variables come first (docs/secrets.md)."
        ),
    )
    connections: Path | None = field(
        default=None,
        metadata=_about(
            "YAML file naming the endpoints of llm nodes: `name: {url, key: ${secrets.NAME},"
            " headers, query}` (docs/llm.md)."
        ),
    )
    clock_offset_file: Path | None = field(
        default=None, metadata=_about("File holding a clock offset (tests).")
    )
    authentication: bool = field(
        default=True,
        metadata=_about(
            "Require an API key or token on the API (--no-auth: off, only on 127.0.0.1).",
            env="AUTH",
            option="--auth",
        ),
    )
    stats: bool = field(
        default=True,
        metadata=_about(
            "Fold the lifecycle topic into the windowed stats tables (--no-stats: off, on every"
            " worker alike; docs/analytics.md).",
            option="--stats",
        ),
    )
    max_record_bytes: int = field(
        default=1_000_000,
        metadata=_about("Largest record a worker writes (at most the broker's message.max.bytes)."),
    )
    jwks_url: str | None = field(
        default=None,
        metadata=_about(
            "JWKS URL of the identity provider whose bearer tokens the API accepts"
            " (unset: none; http only on loopback)."
        ),
    )
    jwt_issuer: str | None = field(
        default=None, metadata=_about("Issuer (iss) a token must name; required with a JWKS URL.")
    )
    jwt_audience: str | None = field(
        default=None,
        metadata=_about("Audience (aud) a token must name; required with a JWKS URL."),
    )
    jwt_tenant_claim: str = field(
        default="tenant",
        metadata=_about("Token claim naming the tenant (absent: the default tenant)."),
    )
    jwt_roles_claim: str = field(
        default="roles",
        metadata=_about("Token claim listing the roles: role or department:role."),
    )
    jwt_leeway_s: float = field(
        default=30.0,
        metadata=_about("Clock skew allowed when checking a token's exp, nbf and iat."),
    )
    jwks_refetch_s: float = field(
        default=30.0,
        metadata=_about(
            "Least time between two fetches of the JWKS (an unknown key id refetches)."
        ),
    )
    event_loop: str = field(
        default="uvloop",
        metadata=_about("The worker's event loop: uvloop (where installed) or asyncio."),
    )

    def __post_init__(self) -> None:
        event_loop.check(self.event_loop)
        if self.heartbeat_interval_s and self.heartbeat_interval_s >= self.session_timeout_s:
            # Every client refuses it, each in words of its own: say it once, by name.
            raise ValueError(
                f"BRAIDFLOW_HEARTBEAT_INTERVAL_S: {self.heartbeat_interval_s:g} s is not below"
                f" the session timeout ({self.session_timeout_s:g} s)"
            )
        if self.read_model and not self.read_model.startswith(POSTGRES_SCHEMES):
            # Refused before anything starts, rather than once the worker is half up.
            raise ValueError(
                "BRAIDFLOW_READ_MODEL: not a postgresql:// URL (unset it to keep the read"
                " models in SQLite files in the data dir)"
            )

    @property
    def broker(self) -> str:
        """The bootstrap servers, for messages and banners."""
        return self.kafka.address

    @property
    def heartbeat_s(self) -> float:
        """How often a member of a consumer group heartbeats: `heartbeat_interval_s`, else a
        quarter of the session timeout."""
        return self.heartbeat_interval_s or self.session_timeout_s / 4

    def aiokafka_group(self, client: str, group: str, fetch_wait_ms: int) -> dict[str, Any]:
        """An aiokafka consumer's settings as a member of `group`: the connection, the
        group's timings (the same for every group of a worker) and manual commits."""
        return {
            **self.kafka.aiokafka(client),
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": fetch_wait_ms,
            "session_timeout_ms": int(self.session_timeout_s * 1000),
            "heartbeat_interval_ms": max(int(self.heartbeat_s * 1000), 100),
            # Also how long a group join takes on some brokers (DESIGN.md).
            "rebalance_timeout_ms": int(self.rebalance_timeout_s * 1000),
            "max_poll_interval_ms": int(self.max_poll_interval_s * 1000),
        }

    def confluent_group(
        self, group: str, fetch_wait_ms: int, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A confluent-kafka consumer's settings as a member of `group`, as
        `aiokafka_group`'s, plus `extra`."""
        return self.kafka.confluent(
            {
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": fetch_wait_ms,
                "session.timeout.ms": int(self.session_timeout_s * 1000),
                "heartbeat.interval.ms": max(int(self.heartbeat_s * 1000), 100),
                # librdkafka also sends this as the group's rebalance timeout, which a join
                # may wait out in full: kept short (the readers take small batches).
                "max.poll.interval.ms": int(max(self.rebalance_timeout_s, 10.0) * 1000),
                "queued.max.messages.kbytes": CONSUMER_QUEUE_KIB,
                **(extra or {}),
            }
        )

    def on_embedded_broker(self) -> Settings:
        """These settings for a worker on an embedded broker (dev mode's or another's):
        heartbeats at least once a second, unless set.

        Tansu keeps a group's session at its first member's, whatever session a later one
        asks for: a worker joining dev mode's broker with the default 10 s session would
        heartbeat every 2.5 s into groups with dev mode's 4 s session, and be dropped from
        them whenever a heartbeat came late.
        """
        if self.heartbeat_interval_s:
            return self
        heartbeat = min(self.session_timeout_s / 4, EMBEDDED_HEARTBEAT_S)
        return replace(self, heartbeat_interval_s=heartbeat)

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

        Only the embedded broker gets fast group joins too (a join there waits for half
        the group's session, `EMBEDDED_SESSION_S`); it does not check group limits.
        On another broker (`braidflow dev --broker`) the group settings stay those of
        production, which a default Apache Kafka accepts (`group_limit_problems`).
        """
        dev = replace(
            self,
            partitions=min(self.partitions, 4),
            fetch_max_wait_ms=5,
            background_fetch_wait_ms=100,
        )
        if not embedded:
            return dev
        return replace(dev, rebalance_timeout_s=3.0, session_timeout_s=EMBEDDED_SESSION_S)


# Dev mode's session on the embedded broker. Tansu answers a group join once half the group's
# session has passed, counted in whole seconds: a join takes 2 s at a 3 or 4 s session, 3 s at
# 5 s. Below 3 s a worker beside dev mode (heartbeats every `EMBEDDED_HEARTBEAT_S`) would have
# too little room for a late heartbeat.
EMBEDDED_SESSION_S = 4.0
EMBEDDED_HEARTBEAT_S = 1.0


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


@dataclass(frozen=True)
class SettingSource:
    """How one settings field is given: its variable, option, type and help."""

    name: str
    env: str
    option: str
    kind: type
    help: str
    default: Any

    def parse(self, raw: str) -> Any:
        """The field's value from the text of its variable; ValueError naming the variable."""
        try:
            if self.kind is tuple:
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            if self.kind is bool:
                return _switch(raw)
            return self.kind(raw)
        except ValueError:
            raise ValueError(f"{self.env}={raw!r} is not a valid {self.name}") from None


_SWITCH = {"1": True, "true": True, "on": True, "yes": True}
_SWITCH |= {"0": False, "false": False, "off": False, "no": False}


def _switch(raw: str) -> bool:
    """on/off from a variable's text: 1/0, true/false, on/off, yes/no."""
    try:
        return _SWITCH[raw.strip().lower()]
    except KeyError:
        raise ValueError(raw) from None


def _source(spec: Field[Any], annotation: Any) -> SettingSource:
    # `int`, `Path | None`, `tuple[str, ...]`: the type a variable's text becomes.
    origin = typing.get_origin(annotation)
    if origin is None or origin is tuple:
        kind = origin or annotation
    else:
        kind = next(a for a in typing.get_args(annotation) if a is not type(None))
    return SettingSource(
        name=spec.name,
        env=f"BRAIDFLOW_{spec.metadata['env'] or spec.name.upper()}",
        option=spec.metadata["option"] or f"--{spec.name.replace('_', '-')}",
        kind=kind,
        help=spec.metadata["help"],
        default=spec.default,
    )


def setting_sources() -> list[SettingSource]:
    """Every setting a variable or an option gives, from the fields of `Settings`: the
    environment table and the CLI options are both made from this list."""
    hints = typing.get_type_hints(Settings)
    return [_source(spec, hints[spec.name]) for spec in fields(Settings) if spec.metadata]


# The two variables of the Kafka connection (see `kafka_connection`).
BROKER_ENV = "BRAIDFLOW_BROKER"
KAFKA_CONFIG_ENV = "BRAIDFLOW_KAFKA_CONFIG"


def settings_from_env(
    defaults: Settings | None = None,
    *,
    broker: str | None = None,
    kafka_config: Path | str | None = None,
    **overrides: object,
) -> Settings:
    """Settings from `BRAIDFLOW_*` variables over `defaults`; keyword overrides (not None) win.

    The Kafka connection: `kafka_config` (else BRAIDFLOW_KAFKA_CONFIG), a Kafka client
    properties file, with its bootstrap servers replaced by `broker` (else BRAIDFLOW_BROKER)
    when that is given too. Neither: the connection of `defaults`. ValueError (a
    KafkaConfigError for the connection) names the variable, file or property at fault.
    """
    base = defaults or Settings()
    values: dict[str, object] = {}
    for source in setting_sources():
        raw = os.environ.get(source.env)
        if raw:
            values[source.name] = source.parse(raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    broker = broker or os.environ.get(BROKER_ENV) or None
    kafka_config = kafka_config or os.environ.get(KAFKA_CONFIG_ENV) or None
    if broker or kafka_config:
        values["kafka"] = kafka_connection(broker, kafka_config)
    return replace(base, **values)  # type: ignore[arg-type]
