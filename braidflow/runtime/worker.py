"""The worker's life: run the wired Faust app until stopped, or until a part fails it."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.worker import Worker as FaustWorker

from braidflow.config import Settings
from braidflow.connectors.audit_index import AuditIndex
from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.connectors.draft_model import DraftModel
from braidflow.connectors.execution_index import ExecutionIndex, ExecutionProjection
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.connectors.node_log_index import NodeLogIndex, NodeLogProjection
from braidflow.runtime import memory_report
from braidflow.streams.app import FaustParts
from braidflow.streams.catalog import Catalog
from braidflow.streams.clock import RuntimeClock
from braidflow.streams.executor import Executor
from braidflow.streams.key_ring import KeyRing
from braidflow.streams.orchestrator import Orchestrator
from braidflow.streams.publisher import Publisher
from braidflow.streams.router import EventRouter
from braidflow.streams.starts import Starts
from braidflow.streams.stats import Stats
from braidflow.streams.topics import EventsTopics


class WorkerFailed(Exception):
    """The worker stopped for a reason retrying cannot fix; the message is one line."""


@dataclass
class Runtime:
    """Everything one worker runs, wired together; `run()` blocks until stopped."""

    settings: Settings
    parts: FaustParts
    catalog: Catalog
    orchestrator: Orchestrator
    executor: Executor
    publisher: Publisher
    events_topics: EventsTopics
    clock: RuntimeClock
    starts: Starts
    router: EventRouter
    executions_index: ExecutionIndex
    dead_letter_index: DeadLetterIndex
    audit_index: AuditIndex
    # Run first as the worker's services start; on a fresh broker (dev mode's), while the
    # worker's groups join, beside the catalog's read.
    on_start: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)
    # Run once the catalog (and key ring) have read their topics: on a fresh broker (dev
    # mode's) while the worker's groups join, else as its services start; before `on_ready`.
    on_catalog: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)
    on_ready: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)
    # Set once every `on_ready` hook is done (dev mode's examples deployed): until then
    # the API answers /ready with 503.
    hooks_done: bool = False
    failure: str | None = None
    _worker: QuietWorker | None = field(default=None, repr=False)
    executions_projection: ExecutionProjection | None = None
    # The cluster's API keys, followed by every worker; None when authentication is off.
    keys: KeyRing | None = None
    # What task handlers logged, per node run (none: not kept here).
    node_logs: NodeLogIndex | None = None
    node_logs_projection: NodeLogProjection | None = None
    # The windowed stats tables and their agents (streams/stats.py).
    stats: Stats | None = None
    # Each execution's lifecycle events, for the streams and `?wait=` (None in some tests).
    lifecycle_feed: LifecycleFeed | None = None
    # The model drafts ask (POST /drafts); None: the worker has no llm connection.
    draft_model: DraftModel | None = None

    @property
    def app(self) -> faust.App:
        return self.parts.app

    def rocksdb_databases(self) -> dict[str, list[Any]]:
        """Per table, the RocksDB databases of its partitions open now (for memory reports)."""
        # `_dbs` is private, but it is the only way to the per-partition databases.
        return {
            table.name: list(getattr(table.data, "_dbs", {}).values())
            for table in self.app.tables.values()
        }

    def run(self, loglevel: str = "warning") -> None:
        """Run until stopped; after a `fail`, raise WorkerFailed with its reason."""
        self._worker = QuietWorker(self.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        self._worker.memory_report = memory_report.from_env(self.rocksdb_databases)
        try:
            self._worker.execute_from_commandline()
        except SystemExit:
            if self.failure is None:
                raise
            raise WorkerFailed(self.failure) from None

    def fail(self, reason: str) -> None:
        """Stop the worker, as Ctrl-C does, for `reason` (the first one given wins).

        Safe from any thread: Faust's consumer reports from a loop of its own.
        """
        if self.failure is not None:
            return
        self.failure = reason
        worker = self._worker
        if worker is not None:
            worker.loop.call_soon_threadsafe(worker._schedule_shutdown, signal.SIGTERM)


class QuietWorker(FaustWorker):
    """Faust's worker without its terminal spinner.

    To spin on every log record, Faust lowers the root logger to DEBUG whenever the level is
    WARN or above, so every client library built a debug record for each message sent: about
    a tenth of a loaded worker's time went to records nobody printed.
    """

    # Written at SIGUSR2 when asked for (memory_report.py); Faust's default is a debugger.
    memory_report: Callable[[], Any] | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None

    def _on_sigusr2(self) -> None:
        if self.memory_report is None:
            super()._on_sigusr2()
        else:
            self.memory_report()
