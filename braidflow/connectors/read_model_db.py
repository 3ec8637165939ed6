"""Where read models keep their rows: a SQLite file per worker, or one PostgreSQL database.

SQLite (the default) is a file in the worker's data dir, read and written on the event
loop: a local file answers in microseconds. With `BRAIDFLOW_READ_MODEL=postgresql://...`
every worker keeps the same rows in one PostgreSQL database: each read model in a schema
of its own, `<prefix>_<model>` (`executions_index`, `dead_letters_index`, `audit_index`, `node_logs_index`),
so two installs (two prefixes) share a server and each model keeps the table names it has
in SQLite. PostgreSQL is reached through psycopg 3 on one thread per read model
(`off_loop`), so the event loop never waits for the network.

Statements are written once, in SQLite's parameter style (`:name`, `?`); `Dialect`
holds the few things that differ (parameter style, `max` of two values, row locks,
reading a JSON field) and is the one place they do.

Several workers project the same topic into one PostgreSQL database. Each batch is
stored in a transaction that first locks the position rows of its partitions
(`claimed`, `SELECT ... FOR UPDATE`): records below a stored position were stored by
another worker and are skipped, and a position only moves forward. So every record is
applied once whichever worker reads it first, a worker that lags never takes rows or
positions back, and no worker has to be elected: when one stops, the others go on at
once. Each worker still reads the whole topic, as it does with SQLite, so its own
`wait_caught_up` stays a local check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import TopicPartition

from braidflow.config import POSTGRES_SCHEMES
from braidflow.connectors.read_model_facts import FACTS_SCHEMA

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostgresLocation:
    """A read model in PostgreSQL: the server's URL and the schema that holds its tables."""

    url: str
    schema: str

    def __repr__(self) -> str:
        # The URL may hold a password: never print it.
        return f"PostgresLocation(schema={self.schema!r})"


ReadModelLocation = Path | PostgresLocation


def read_model_location(
    read_model: str | None, data_dir: Path, prefix: str, name: str
) -> ReadModelLocation:
    """Where the read model `name` lives: `name`.sqlite in `data_dir`, or the schema
    `<prefix>_<name>` of the PostgreSQL database `read_model` names (ValueError naming
    BRAIDFLOW_READ_MODEL when it is neither empty nor a postgresql:// URL)."""
    if not read_model:
        return data_dir / f"{name}.sqlite"
    if not read_model.startswith(POSTGRES_SCHEMES):
        raise ValueError(
            "BRAIDFLOW_READ_MODEL: not a postgresql:// URL (unset it to keep the read models"
            " in SQLite files in the data dir)"
        )
    return PostgresLocation(read_model, f"{prefix}_{name}".replace("-", "_").replace(".", "_"))


@dataclass(frozen=True)
class Dialect:
    """What differs between SQLite and PostgreSQL in the read models' statements."""

    name: str
    greatest: str
    """The larger of two values: SQLite's two-argument `max`, PostgreSQL's `greatest`."""
    lock_rows: str
    """What a SELECT ends with to lock the rows it reads until the transaction ends."""
    json_type: str
    """The type of a column holding JSON, `{json}` in a schema: text in SQLite, `jsonb` in
    PostgreSQL (which a GIN index can search by containment, `@>`)."""

    def statement(self, text: str) -> str:
        """`text` (SQLite parameter style, `{greatest}` for the larger of two values) in
        this dialect."""
        text = text.replace("{greatest}", self.greatest)
        if self.name == "sqlite":
            return text
        # psycopg's style: %(name)s and %s, and a literal % doubled.
        text = text.replace("%", "%%")
        text = re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", text)
        return text.replace("?", "%s")

    def json_field(self, column: str) -> str:
        """An expression for the JSON text (`json_text`) of a field of the JSON in `column`,
        null when it has none; its one parameter is the field's path as `json_path` gives it."""
        if self.name == "sqlite":
            return f"({column} -> ?)"
        return f"(({column})::jsonb #> ?)::text"

    def json_contains(self, column: str) -> str | None:
        """A condition that `column`'s JSON contains the JSON document of its one parameter
        (PostgreSQL's `@>`, which a GIN index answers); None in SQLite, which has no such
        index."""
        if self.name == "sqlite":
            return None
        return f"{column} @> ?::jsonb"

    def json_path(self, path: Sequence[str]) -> Any:
        """The parameter `json_field` takes for the field at `path` (keys, outermost first)."""
        if self.name == "sqlite":
            return "$" + "".join(f'."{key}"' for key in path)
        return list(path)


SQLITE = Dialect("sqlite", greatest="max", lock_rows="", json_type="TEXT")
POSTGRESQL = Dialect("postgresql", greatest="greatest", lock_rows=" FOR UPDATE", json_type="JSONB")


def json_text(value: Any) -> str:
    """`value` as the JSON text a read model stores and `Dialect.json_field` compares: for
    a string, number, true, false or null, the same text on both stores."""
    return _json_text(value)


# Made once: `json.dumps` with options makes an encoder at every call, a third of its time
# for an execution's input (the index writes one per started execution).
_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def given_conditions(conditions: Iterable[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """A query's optional filters: ` AND <condition>` for each (condition, value) whose value
    is given (not None), and those values, its parameters, in order."""
    text = ""
    params: list[Any] = []
    for condition, value in conditions:
        if value is not None:
            text += f" AND {condition}"
            params.append(value)
    return text, params


POSITIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""
"""The next offset to read of every partition: part of the schema of every read model."""

_UPSERT_POSITION = """
INSERT INTO positions VALUES (?, ?, ?)
ON CONFLICT (topic, partition) DO UPDATE
SET next_offset = {greatest}(positions.next_offset, excluded.next_offset)
"""

_ADD_POSITION = "INSERT INTO positions VALUES (?, ?, 0) ON CONFLICT (topic, partition) DO NOTHING"
_SELECT_POSITION = "SELECT next_offset FROM positions WHERE topic = ? AND partition = ?"
_SELECT_POSITIONS_OF_TOPIC = "SELECT partition, next_offset FROM positions WHERE topic = ?"


class ReadModelDb:
    """The database of one read model: its connection, dialect and thread.

    Not for concurrent use: call it from the event loop through `off_loop` (or from one
    thread, as the tests do).
    """

    def __init__(self, location: ReadModelLocation, schema: str) -> None:
        self.location = location
        self.tables_found: frozenset[str] | None = None
        """The tables the database held before this object first created any: an older
        version's, or none for a new read model."""
        self._thread: ThreadPoolExecutor | None = None
        self._pg: psycopg.Connection[Any] | None = None
        self._sqlite: sqlite3.Connection | None = None
        if isinstance(location, PostgresLocation):
            self.dialect = POSTGRESQL
            self._schema = schema.replace("{json}", POSTGRESQL.json_type)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"read-model-{location.schema}")
            self._pg = self._connect_pg()
        else:
            self.dialect = SQLITE
            location.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(location)
            found = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            self.tables_found = frozenset(table for (table,) in found)
            db.execute("PRAGMA journal_mode = WAL")
            # Safe in WAL mode: a crash can lose the last transactions, but never
            # rows without their offsets, so the lost part is simply read again.
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(schema.replace("{json}", SQLITE.json_type))
            self._sqlite = db

    def _connect_pg(self) -> psycopg.Connection[Any]:
        assert isinstance(self.location, PostgresLocation)
        # Imported only here: psycopg took a sixth of a second of every start on SQLite.
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(self.location.url, autocommit=True)
        name = sql.Identifier(self.location.schema)
        with conn.transaction():
            # Two workers creating the same schema at once: one waits for the other.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.location.schema,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            conn.execute(sql.SQL("SET search_path TO {}").format(name))
            if self.tables_found is None:
                found = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                    (self.location.schema,),
                )
                self.tables_found = frozenset(table for (table,) in found)
            conn.execute(self._schema)
        return conn

    @property
    def sqlite(self) -> sqlite3.Connection | None:
        """The SQLite connection, for a model's migrations of its file; None on PostgreSQL."""
        return self._sqlite

    def _conn(self) -> Any:
        if self._sqlite is not None:
            return self._sqlite
        assert self._pg is not None
        if self._pg.broken or self._pg.closed:
            # The server restarted or the network dropped: reconnect, the caller retries.
            self._pg = self._connect_pg()
        return self._pg

    def execute(self, statement: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        """Run one statement (SQLite style, see `Dialect.statement`); its cursor."""
        return self._conn().execute(self.dialect.statement(statement), params)

    def executemany(
        self, statement: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        conn = self._conn()
        text = self.dialect.statement(statement)
        if self._sqlite is not None:
            conn.executemany(text, rows)
        else:
            with conn.cursor() as cursor:
                cursor.executemany(text, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is stored together or not at all (nested: a savepoint on
        PostgreSQL, part of the outer one on SQLite)."""
        conn = self._conn()
        if self._sqlite is not None:
            if conn.in_transaction:
                yield
                return
            with conn:
                yield
            return
        # Pipelined: statements go without waiting for each answer (one round trip
        # each cost a batch of lifecycle events about twice its time).
        with conn.transaction(), conn.pipeline():
            yield

    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read of every partition the read model was built from."""
        rows = self.execute("SELECT topic, partition, next_offset FROM positions")
        return {TopicPartition(topic, partition): offset for topic, partition, offset in rows}

    def store_positions(self, positions: Mapping[TopicPartition, int]) -> None:
        """Record next offsets to read (never moving one back); call it in the transaction
        that stores their rows."""
        self.executemany(
            _UPSERT_POSITION,
            [(tp.topic, tp.partition, offset) for tp, offset in positions.items()],
        )

    def _stored_positions(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The stored next offset of each of `partitions` (0: none stored yet)."""
        partitions = tuple(partitions)
        stored: dict[TopicPartition, int] = {}
        for topic in {tp.topic for tp in partitions}:
            rows = dict(self.execute(_SELECT_POSITIONS_OF_TOPIC, (topic,)).fetchall())
            stored.update({tp: rows.get(tp.partition, 0) for tp in partitions if tp.topic == topic})
        return stored

    @contextlib.contextmanager
    def claimed(self, partitions: Iterable[TopicPartition]) -> Iterator[dict[TopicPartition, int]]:
        """A transaction holding the position rows of `partitions`, which it yields: another
        worker storing the same partitions waits until it ends (PostgreSQL)."""
        with self.transaction():
            if self._sqlite is not None:
                # A worker's own file, written by it alone: no row to hold, and one read per
                # topic (two statements per partition were most of a batch's cost here).
                yield self._stored_positions(partitions)
                return
            stored: dict[TopicPartition, int] = {}
            # Always in the same order, so two workers never wait for each other in a circle.
            for tp in sorted(partitions):
                self.execute(_ADD_POSITION, (tp.topic, tp.partition))
                (offset,) = self.execute(
                    _SELECT_POSITION + self.dialect.lock_rows, (tp.topic, tp.partition)
                ).fetchone()
                stored[tp] = offset
            yield stored

    async def off_loop(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)`, on this database's thread for PostgreSQL (the event loop
        must not wait for the network), at once for a SQLite file."""
        if self._thread is None:
            return call(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._again_if_dropped, call, args, kwargs)

    def _again_if_dropped(
        self, call: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """`call`, made once more on a new connection when the server dropped this one (a
        restart, a failover): nothing of a failed transaction was stored, and the read
        models' writes are idempotent, so doing it again is safe."""
        import psycopg  # loaded by `_connect_pg` already: only PostgreSQL has this thread

        try:
            return call(*args, **kwargs)
        except psycopg.OperationalError:
            if self._pg is None or not (self._pg.broken or self._pg.closed):
                raise
            log.warning("the read model's connection to PostgreSQL was lost; reconnecting")
            return call(*args, **kwargs)

    def close(self) -> None:
        """Close the connection, once a call still running on the thread is done."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def fresh_records(records: Sequence[Any], stored: Mapping[TopicPartition, int]) -> list[Any]:
    """The records (`projection.Record`s) at or after the stored position of their
    partition: the others were stored already, by this worker or another."""
    # A TopicPartition is a named tuple: a plain tuple finds it, without making one a record.
    return [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]  # type: ignore[call-overload]


def add_missing_columns(db: sqlite3.Connection, table: str, columns: Iterable[str]) -> None:
    """Add to `table` of a SQLite file written by an older version each of `columns` (a
    column's definition, `name TYPE ...`) it does not have; the caller's transaction."""
    found = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for column in columns:
        if column.split()[0] not in found:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


class ReadModel:
    """What every read model shares: its database, positions, claims, thread and reset."""

    def __init__(self, location: ReadModelLocation, schema: str) -> None:
        schema += POSITIONS_SCHEMA
        # The facts outlive a reset: they say what the rows were read from.
        self.db = ReadModelDb(location, schema + FACTS_SCHEMA)
        self._tables = _TABLE.findall(schema)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def storing(self, positions: Mapping[TopicPartition, int] | None) -> Iterator[None]:
        """A transaction for a batch's rows that stores, after them, the next offsets to read
        (`positions`; None: the rows only): rows and positions are kept together or not at all."""
        with self.db.transaction():
            yield
            if positions:
                self.db.store_positions(positions)

    def reset(self) -> None:
        """Forget every row of every table of the schema, positions last, to rebuild the read
        model from the start of its topic."""
        with self.db.transaction():
            for table in self._tables:
                self.db.execute(f"DELETE FROM {table}")

    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read of every partition the read model was built from."""
        return self.db.positions()

    def claimed(
        self, partitions: Iterable[TopicPartition]
    ) -> contextlib.AbstractContextManager[dict[TopicPartition, int]]:
        """See `ReadModelDb.claimed`."""
        return self.db.claimed(partitions)

    async def off_loop(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """See `ReadModelDb.off_loop`."""
        return await self.db.off_loop(call, *args, **kwargs)
