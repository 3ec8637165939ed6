"""braidflow workers as real subprocesses (`python -m braidflow.cli worker`), and their API.

Each `WorkerProcess` writes its stdout and stderr to a log file; every failure
these helpers report ends with the tail of that log, since the cause of a
failing integration test is nearly always in there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from suite_broker import SuiteBroker

from braidflow.access import DEFAULT_TENANT, Role
from braidflow.client_cli import Api, ApiUnreachable, Reply
from braidflow.config import Settings
from braidflow.connectors.broker import free_port
from braidflow.engine.state import TERMINAL
from braidflow.key_commands import with_keys
from braidflow.streams.key_ring import KeyRing

HERE = Path(__file__).parent
TASK_HANDLERS = HERE / "task_handlers.py"
EXAMPLE_HANDLERS = HERE.parent.parent / "examples" / "handlers.py"
# The support example's helpdesk credential: the shared worker's secret, the demo helpdesk's token.
HELPDESK_TOKEN = "suite-helpdesk-7Qm2xV"

SHARED_CHAT_CONNECTION = "test"
"""The shared worker's connection to the tests' chat server (conftest.py `chat_server`)."""

DEV_SPEED = {
    # See DESIGN.md, "The embedded broker": a fetch waits its full fetch.max.wait and a
    # group join about as long as the rebalance timeout.
    "BRAIDFLOW_FETCH_MAX_WAIT_MS": "5",
    "BRAIDFLOW_BACKGROUND_FETCH_WAIT_MS": "100",
    "BRAIDFLOW_REBALANCE_TIMEOUT_S": "3",
    "BRAIDFLOW_SESSION_TIMEOUT_S": "3",
    "BRAIDFLOW_PARTITIONS": "4",
}
POLL_S = 0.05
APPLIED = re.compile(r'^braidflow_transitions_total\{[^}]*outcome="applied"[^}]*\} (\S+)$', re.M)
# The name of the owner key every worker's API client sends (decisions are recorded by it).
SUITE_OWNER = "suite-owner"


def make_key(
    broker: SuiteBroker,
    prefix: str,
    role: Role,
    name: str,
    department: str | None = None,
    tenant: str = DEFAULT_TENANT,
) -> str:
    """A key of `tenant` for the workers of `prefix`, made straight on Kafka as `braidflow
    keys create` makes it. In a thread: the calling test may run an event loop of its own."""

    async def create(ring: KeyRing) -> str:
        key, _ = await ring.create(tenant, role, department, name, 0, "tests")
        return key

    settings = Settings(kafka=broker.connection, prefix=prefix)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, with_keys(settings, create)).result()


_OWNER_KEYS: dict[tuple[str, str], str] = {}


def owner_key(broker: SuiteBroker, prefix: str) -> str:
    """The owner key of the workers of `prefix`, made once."""
    found = _OWNER_KEYS.get((broker.address, prefix))
    if found is None:
        found = _OWNER_KEYS[(broker.address, prefix)] = make_key(
            broker, prefix, Role.OWNER, SUITE_OWNER
        )
    return found


class WorkerApi:
    """A small synchronous client of one worker's REST API (`/api/v1`)."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._api = Api.at(self.base_url, key)

    def with_key(self, key: str | None) -> WorkerApi:
        """The same API, called with `key` (None: no credential at all)."""
        return WorkerApi(self.base_url, key)

    def as_new_key(self, role: str, name: str, department: str | None = None) -> WorkerApi:
        """The same API, called with a new key this API's (owner) key makes: the worker
        answers once it knows the key, so the key works on it at once."""
        wanted = {"role": role, "name": name}
        if department is not None:
            wanted["department"] = department
        reply = self.post_json("/keys", wanted)
        assert reply.status == 201, reply
        return self.with_key(str(reply.body["key"]))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request to `/api/v1<path>`: the CLI's own client, so the tests use it too."""
        return self._api.call(method, path, body, content_type, headers)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post_json(self, path: str, payload: Any) -> Reply:
        return self.request("POST", path, json.dumps(payload).encode(), "application/json")

    def deploy(self, text: str) -> Reply:
        return self.request("POST", "/workflows", text.encode(), "application/yaml")

    def start(self, workflow_id: str, input_: Any) -> str:
        """Start an execution; its id. Fails the test unless the API accepts it."""
        reply = self.post_json(f"/workflows/{workflow_id}/executions", {"input": input_})
        assert reply.status == 202, reply
        return str(reply.body["execution_id"])

    def execution(self, execution_id: str) -> Reply:
        return self.get(f"/executions/{execution_id}")


class WorkerProcess:
    """One `braidflow worker` subprocess on `broker`, with its own data dir and API port."""

    def __init__(
        self,
        broker: SuiteBroker,
        prefix: str,
        data_dir: Path,
        log_path: Path,
        handlers: Sequence[Path] = (TASK_HANDLERS,),
        api_port: int | None = None,
        env: Mapping[str, str] | None = None,
        authentication: bool = True,
    ) -> None:
        """`authentication`: on (the default), and the API client sends an owner key."""
        self.broker = broker
        self.authentication = authentication
        self.prefix = prefix
        self.data_dir = data_dir
        self.log_path = log_path
        self.handlers = tuple(handlers)
        self.api_port = api_port or free_port()
        self.extra_env = dict(env or {})
        self.api = WorkerApi(f"http://127.0.0.1:{self.api_port}")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"worker {self.prefix}@{self.api_port}"

    def start(self) -> WorkerProcess:
        if self.authentication and self.api.key is None:
            self.api = self.api.with_key(owner_key(self.broker, self.prefix))
        # Only the settings chosen here: a BRAIDFLOW_* variable of the caller's shell
        # (a broker, a prefix) must not leak into the test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIDFLOW_")}
        env.update(DEV_SPEED, PYTHONUNBUFFERED="1", **self.extra_env)
        command = [
            sys.executable,
            "-m",
            "braidflow.cli",
            "worker",
            *self.broker.worker_options(),
            "--prefix",
            self.prefix,
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.api_port),
            "--loglevel",
            "info",
        ]
        if not self.authentication:
            command.append("--no-auth")
        for handlers in self.handlers:
            command += ["--handlers", str(handlers)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout_s: float = 60.0) -> WorkerProcess:
        """Poll GET /api/v1/ready until 200; fail with the log tail if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while True:
            if not self.alive:
                self.fail(f"exited with status {self.returncode} before it was ready")
            try:
                reply = self.api.get("/ready")
                if reply.status == 200:
                    return self
                last = f"{reply.status} {reply.body}"
            except ApiUnreachable as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                self.fail(f"not ready after {timeout_s}s (last answer: {last})")
            time.sleep(0.1)

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def kill(self, settle: bool = True) -> None:
        """SIGKILL: no shutdown at all, as a crash. Then, if `settle`, the changelogs are
        settled on the embedded broker (`SuiteBroker.settle_changelogs`), as the crash tests
        did before a worker on it read its changelog ends from a fetch
        (streams/changelog_ends.py); `settle=False` tests that reading."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            if settle:
                self.broker.settle_changelogs(self.prefix)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM and wait for a clean shutdown; SIGKILL if it takes longer than `timeout_s`."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def applied_transitions(self) -> int:
        """The transitions this worker's engine applied (its /metrics), every kind."""
        reply = self.api.get("/metrics")
        assert reply.status == 200, reply
        return round(sum(float(n) for n in APPLIED.findall(str(reply.body))))

    def log(self) -> str:
        """The whole log so far: what a test looks for in it may be followed by any number
        of lines (consumer group assignments, one table per group)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def fail(self, message: str) -> None:
        pytest.fail(f"{self.name}: {message}\n{describe([self])}", pytrace=False)

    def wait_until_finished(
        self, execution_ids: Iterable[str], timeout_s: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Poll until every execution is in a terminal status; their views, by id."""
        return wait_for_terminal(self.api, execution_ids, timeout_s, [self])

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def describe(workers: Iterable[WorkerProcess], lines: int = 60) -> str:
    """The log tail of each worker, for a failure message."""
    return "\n".join(
        f"----- {w.name} (exit status {w.returncode}), last {lines} lines of {w.log_path}\n"
        f"{w.log_tail(lines)}"
        for w in workers
    )


def wait_for_terminal(
    api: WorkerApi,
    execution_ids: Iterable[str],
    timeout_s: float,
    workers: Sequence[WorkerProcess],
) -> dict[str, dict[str, Any]]:
    """GET each execution until all are completed, failed or cancelled; their views, by id.

    A 404 means "not there yet" (the start is still on its way); a 503 or a refused
    connection is a worker between owners. Anything else fails the test.
    """
    pending = list(execution_ids)
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while pending:
        still = []
        for execution_id in pending:
            try:
                reply = api.execution(execution_id)
            except ApiUnreachable as exc:
                last[execution_id] = repr(exc)
                still.append(execution_id)
                continue
            if reply.status == 200 and reply.body["status"] in TERMINAL:
                done[execution_id] = reply.body
                continue
            if reply.status not in (200, 404, 503):
                pytest.fail(f"GET execution {execution_id}: {reply}\n{describe(workers)}")
            last[execution_id] = reply.body.get("status") if reply.status == 200 else reply
            still.append(execution_id)
        pending = still
        if pending and time.monotonic() > deadline:
            sample = {e: last.get(e) for e in pending[:5]}
            pytest.fail(
                f"{len(pending)} of {len(done) + len(pending)} executions not finished after"
                f" {timeout_s}s; e.g. {sample}\n{describe(workers)}",
                pytrace=False,
            )
        if pending:
            time.sleep(POLL_S)
    return done
