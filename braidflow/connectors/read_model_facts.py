"""What a read model knows of itself, kept in its own database: the Kafka cluster it was
built from and (on PostgreSQL, which has no `user_version`) its schema's version.

A new cluster (a recreated one, another one behind the same address) has topics that hold
other records at the same offsets: a read model built from the old one is reset and read
again. For a SQLite file the data dir does so (`braidflow.connectors.local_state`); a
PostgreSQL schema is shared by the workers and outlives their data dirs, so it remembers
its cluster here, in the table every read model has beside its positions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from braidflow.connectors.read_model_db import ReadModel, ReadModelDb

log = logging.getLogger(__name__)

FACTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS read_model_facts (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
"""Part of the schema of every read model, beside its positions; a reset keeps it."""

CLUSTER_ID = "cluster_id"
SCHEMA_VERSION = "schema_version"

_UPSERT = """
INSERT INTO read_model_facts VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value
"""


def fact(db: ReadModelDb, name: str) -> str | None:
    """The value of fact `name`, its row locked until the transaction ends (PostgreSQL);
    None when none is stored."""
    query = "SELECT value FROM read_model_facts WHERE name = ?" + db.dialect.lock_rows
    row = db.execute(query, (name,)).fetchone()
    return None if row is None else str(row[0])


def store_fact(db: ReadModelDb, name: str, value: str) -> None:
    """Store `value` as fact `name`; call it in a transaction."""
    db.execute(_UPSERT, (name, value))


def adopt_cluster(model: ReadModel, cluster_id: str | None) -> bool:
    """Make `model` the projection of `cluster_id`'s topics: reset it when it was built from
    another cluster; whether it was. A model with no cluster stored (new, or from before
    clusters were stored) is kept as it is: nothing says it came from elsewhere."""
    if cluster_id is None:
        return False
    db = model.db
    with db.transaction():
        # Locked on PostgreSQL: of two workers starting at once, one resets, the other
        # then finds this cluster stored.
        remembered = fact(db, CLUSTER_ID)
        changed = remembered is not None and remembered != cluster_id
        if changed:
            log.warning(
                "the read model in %r was built from another Kafka cluster (%s, this one is"
                " %s): reading it again from this cluster's topic",
                db.location,
                remembered,
                cluster_id,
            )
            model.reset()
        if remembered != cluster_id:
            store_fact(db, CLUSTER_ID, cluster_id)
    return changed
