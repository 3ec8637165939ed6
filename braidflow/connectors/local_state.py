"""A worker's data dir belongs to one Kafka cluster: the one whose changelogs it mirrors.

The data dir holds RocksDB tables (copies of changelog topics, with the offsets read so
far) and SQLite read models (projections of topics). Against another cluster (a fresh
embedded broker, a recreated cluster) those offsets point past topics that are empty or
shorter, and Faust stops with a ConsistencyError. The cluster's id is remembered in the
data dir; when the broker's id differs, everything derived from the old cluster is
removed, and the worker rebuilds it from this cluster's changelogs and topics.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from braidflow.kafka_connection import KafkaConnection
from braidflow.kafka_reach import connected_admin

log = logging.getLogger(__name__)

CLUSTER_ID_FILE = "cluster-id"
# What a worker derives from the cluster: Faust's tables and the read models.
DERIVED = ("faust", "executions-index.sqlite", "dead-letters-index.sqlite")


def cluster_id_of(connection: KafkaConnection, timeout_s: float = 15.0) -> str | None:
    """The cluster id the broker reports in its metadata (None if it reports none);
    KafkaUnreachable, one line naming the address and the cause, when it cannot be read."""
    return connected_admin(connection, timeout_s)[1].cluster_id


def adopt_data_dir(data_dir: Path, cluster_id: str | None) -> bool:
    """Make `data_dir` the state of `cluster_id`; whether what it held was removed.

    A data dir without a remembered id (new, or from before ids were remembered) is
    kept as it is: nothing says it came from elsewhere.
    """
    if cluster_id is None:
        return False
    remembered_path = data_dir / CLUSTER_ID_FILE
    try:
        remembered = remembered_path.read_text().strip()
    except FileNotFoundError:
        remembered = None
    removed = False
    if remembered is not None and remembered != cluster_id:
        log.warning(
            "%s holds the state of another Kafka cluster (%s, this one is %s):"
            " rebuilding it from this cluster's changelogs",
            data_dir,
            remembered,
            cluster_id,
        )
        for name in DERIVED:
            # A SQLite file comes with its -wal and -shm files.
            for path in data_dir.glob(f"{name}*"):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        removed = True
    if remembered != cluster_id:
        data_dir.mkdir(parents=True, exist_ok=True)
        remembered_path.write_text(f"{cluster_id}\n")
    return removed
