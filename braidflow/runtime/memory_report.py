"""Where a worker's memory goes, for whoever profiles it: off unless asked for.

With `BRAIDFLOW_MEMORY_REPORT=DIR` set, each SIGUSR2 the worker gets writes
`DIR/memory-<unix seconds>.txt`: its resident set as the kernel sees it
(/proc/self/smaps_rollup), the Python heap tracemalloc counts, and the top allocation
sites. The first signal starts tracing (tracemalloc slows the worker down, so not from
the start): later reports show what was allocated since, and still held. Resident memory
that grew more than the traced heap is native: RocksDB, librdkafka, the allocator.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

ENV_DIR = "BRAIDFLOW_MEMORY_REPORT"
TOP = 30


def kernel_view(smaps_rollup: str) -> dict[str, int]:
    """The fields of /proc/PID/smaps_rollup that say what is resident, in KiB."""
    kib = {}
    for line in smaps_rollup.splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean", "Swap"):
            kib[name] = int(value.split()[0])
    return kib


ROCKSDB_PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block cache": "rocksdb.block-cache-usage",
    "table readers": "rocksdb.estimate-table-readers-mem",
}


class PropertyReader(Protocol):
    """The part of a rocksdict `Rdict` a report reads."""

    def property_int_value(self, name: str) -> int | None: ...


def rocksdb_view(tables: Mapping[str, Iterable[PropertyReader]]) -> dict[str, dict[str, int]]:
    """Per table, the bytes its partitions' databases say they hold in memory.

    A cache shared by several databases is counted once per database.
    """
    return {
        table: {
            what: sum(db.property_int_value(name) or 0 for db in dbs)
            for what, name in ROCKSDB_PROPERTIES.items()
        }
        for table, dbs in ((table, list(dbs)) for table, dbs in tables.items())
    }


def report(
    smaps_rollup: str,
    snapshot: tracemalloc.Snapshot,
    rocksdb: Mapping[str, Mapping[str, int]],
    top: int = TOP,
) -> str:
    """The text of one report: resident memory, RocksDB's, the traced Python heap, its top sites."""
    kib = kernel_view(smaps_rollup)
    stats = snapshot.statistics("lineno")
    traced = sum(stat.size for stat in stats)
    lines = [
        *(f"{name:<16} {value / 1024:10.1f} MiB" for name, value in kib.items()),
        *(
            f"rocksdb {table:<20} "
            + ", ".join(f"{what} {size / 2**20:.1f} MiB" for what, size in sizes.items())
            for table, sizes in rocksdb.items()
        ),
        f"{'python traced':<16} {traced / 2**20:10.1f} MiB (allocated since tracing began)",
        "",
        f"top {top} Python allocation sites:",
    ]
    for stat in stats[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size / 2**20:9.2f} MiB {stat.count:9,} blocks  {frame.filename}:{frame.lineno}"
        )
    return "\n".join(lines) + "\n"


RocksDBTables = Callable[[], Mapping[str, Iterable[PropertyReader]]]
"""Per table name, the databases of its partitions open now."""


def write_report(directory: Path, tables: RocksDBTables) -> Path:
    """Write one report now into `directory` (tracing from now on, if not yet); its path."""
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    text = report(
        Path("/proc/self/smaps_rollup").read_text(),
        tracemalloc.take_snapshot(),
        rocksdb_view(tables()),
    )
    path = directory / f"memory-{time.time():.0f}.txt"
    path.write_text(text)
    return path


def from_env(tables: RocksDBTables) -> Callable[[], Path] | None:
    """What writes a report, if `BRAIDFLOW_MEMORY_REPORT` names a directory; else None.

    The worker calls it at each SIGUSR2 (in place of Faust's default, a debugger).
    """
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return lambda: write_report(Path(directory), tables)
