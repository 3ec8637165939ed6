"""The redaction test (issue 16, item 4): a secret planted in a worker is used by its workflows and
found nowhere else.

Two secrets are planted, random values: API_TOKEN as the variable BRAIDFLOW_SECRET_API_TOKEN
and HELPDESK_TOKEN as a file (with a trailing newline) in the directory BRAIDFLOW_SECRETS_DIR
names. One worker of the test's own (own topic prefix, data directory and log) runs:

- `secret-calls`: an http node calling a real aiohttp server on 127.0.0.1 that checks
  `Authorization: Bearer <API_TOKEN>` and `?key=<HELPDESK_TOKEN>` and echoes both back (body
  and a header); a task handler reading `context.secrets["HELPDESK_TOKEN"]` and returning it;
  an http node whose server answers the first call 503 echoing the Authorization header (the
  node has no retry: the execution fails, the node is dead-lettered) and is then redriven
  through the API and completes. Its input holds the text `${secrets.API_TOKEN}`, which must
  reach the server as that text, never resolved.
- `secret-strict`: a handler raising an error that quotes API_TOKEN until its input is
  patched; dead-lettered, then redriven with a patched input, completes.
- a deploy of a workflow naming a secret in a task's input, refused.

Then it searches, for the bytes of each secret's value:
1. every record (key, value and every header) of every topic whose name starts with the
   worker's prefix, read from the start of every partition with a raw consumer (no group),
   up to the end: transitions, tasks, lifecycle, workflows, dead letters, waits, and every
   table's changelog;
2. every file under the worker's data directory after a clean stop (RocksDB: SST, WAL,
   MANIFEST, logs; SQLite read models and their journals);
3. the worker's whole log (its stdout and stderr, at level info);
4. the raw bytes of every API answer the test got (each request it made, every poll
   included), and a final GET of every read endpoint: /workflows, /workflows/{id},
   /workflows/{id}/executions, /executions/{id}, /dead-letters, /approvals, /metrics,
   /health, /ready, /openapi.json.
No hit anywhere. (RocksDB may Snappy-compress its blocks; a random value's first occurrence
in a block stays a literal.) The search was seen to catch leaks by making the code leak on
purpose, twice: with the engine resolving secrets into the http request, the values turned
up in the tasks, transitions, lifecycle, dead-letters and executions-changelog topics, in
dead-letters-index.sqlite and an executions RocksDB .sst file, and in the answers of
GET /executions/{id} and /dead-letters; with the executor's redaction switched off, in the
changelog, dead-letters and lifecycle topics, and the rest downstream.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from background_loop import BackgroundLoop
from confluent_kafka.admin import AdminClient
from suite_broker import SuiteBroker
from topic_records import TopicReader
from waiting import until
from workers import TASK_HANDLERS, WorkerProcess

from braidflow.connectors.broker import free_port

API_TOKEN = f"api-{uuid.uuid4().hex}"
HELPDESK_TOKEN = f"helpdesk-{uuid.uuid4().hex}"
SECRETS = {"API_TOKEN": API_TOKEN.encode(), "HELPDESK_TOKEN": HELPDESK_TOKEN.encode()}

CALLS = """
id: secret-calls
nodes:
  - id: call
    type: http
    params:
      method: GET
      url: "{base}/check?key=${{secrets.HELPDESK_TOKEN}}"
      headers: {{Authorization: "Bearer ${{secrets.API_TOKEN}}"}}
      expect_status: 200
  - {{id: read, type: task, params: {{handler: test.secret_reader}}}}
  - id: flaky
    type: http
    params:
      method: POST
      url: "{base}/flaky"
      headers: {{Authorization: "Bearer ${{secrets.API_TOKEN}}"}}
      body: {{note: "${{input.note}}", token: "${{secrets.HELPDESK_TOKEN}}"}}
  - id: done
    type: end
    params:
      output: {{call: "${{nodes.call.output}}", read: "${{nodes.read.output}}",
                flaky: "${{nodes.flaky.output}}"}}
edges:
  - {{from: call, to: read}}
  - {{from: read, to: flaky}}
  - {{from: flaky, to: done}}
"""
STRICT = """
id: secret-strict
nodes:
  - {id: strict, type: task, params: {handler: test.secret_strict, input: {fixed: false}}}
  - {id: done, type: end, params: {output: "${nodes.strict.output}"}}
edges:
  - {from: strict, to: done}
"""
REFUSED = """
id: secret-in-state
nodes:
  - {id: t, type: task, params: {handler: test.echo, input: {k: "${secrets.API_TOKEN}"}}}
  - {id: done, type: end}
edges:
  - {from: t, to: done}
"""


@dataclass
class Answers:
    """Every API answer the test got, raw, from the worker at `base`."""

    base: str
    key: str | None = None
    raw: list[tuple[str, bytes]] = field(default_factory=list)

    def call(self, method: str, path: str, payload: Any = None, yaml: str | None = None) -> Any:
        """`(status, parsed body)` of one request to /api/v1<path>; the raw answer is kept."""
        data, kind = None, None
        if yaml is not None:
            data, kind = yaml.encode(), "application/yaml"
        elif payload is not None:
            data, kind = json.dumps(payload).encode(), "application/json"
        request = urllib.request.Request(f"{self.base}/api/v1{path}", data=data, method=method)
        if kind:
            request.add_header("Content-Type", kind)
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        self.raw.append((f"{method} {path}", str(headers).encode() + body))
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")


@dataclass
class Services:
    """The servers the workflows call: they check the secrets and echo them back."""

    seen: list[dict[str, str]] = field(default_factory=list)
    flaky_calls: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/check", self.check)
        app.router.add_post("/flaky", self.flaky)
        return app

    async def check(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.seen.append({"path": "check", "auth": auth, "key": request.query.get("key", "")})
        if auth != f"Bearer {API_TOKEN}" or request.query.get("key") != HELPDESK_TOKEN:
            return web.json_response({"error": "bad credentials"}, status=401)
        echoed = {"auth": auth, "key": request.query["key"]}
        return web.json_response(echoed, headers={"X-Echo": auth})

    async def flaky(self, request: web.Request) -> web.Response:
        self.flaky_calls += 1
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        self.seen.append({"path": "flaky", "auth": auth, "note": body["note"]})
        if self.flaky_calls == 1:
            return web.Response(status=503, text=f"down for maintenance; you sent {auth}")
        return web.json_response({"you_sent": auth, "body": body})


@pytest.fixture
def services(background_loop: BackgroundLoop) -> Iterator[tuple[Services, str]]:
    services = Services()
    port = free_port()
    runner = background_loop.serve(services.app(), "127.0.0.1", port)
    yield services, f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def hits(haystack: bytes) -> list[str]:
    return [name for name, value in SECRETS.items() if value in haystack]


def test_a_planted_secret_is_used_by_workflows_and_found_nowhere_else(
    broker: SuiteBroker, tmp_path: Path, services: tuple[Services, str], prefix: str
) -> None:
    server, base = services
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "HELPDESK_TOKEN").write_text(HELPDESK_TOKEN + "\n")
    worker = WorkerProcess(
        broker,
        prefix,
        tmp_path / "data",
        tmp_path / "worker.log",
        handlers=(TASK_HANDLERS,),
        env={"BRAIDFLOW_SECRET_API_TOKEN": API_TOKEN, "BRAIDFLOW_SECRETS_DIR": str(secrets_dir)},
    )
    answers = Answers(worker.api.base_url)
    try:
        worker.start().wait_ready()
        answers.key = worker.api.key
        status, body = answers.call("POST", "/workflows", yaml=CALLS.format(base=base))
        assert status == 201, body
        assert answers.call("POST", "/workflows", yaml=STRICT)[0] == 201
        status, refused = answers.call("POST", "/workflows", yaml=REFUSED)
        assert status == 400, refused
        assert any("node 't'" in p and "${secrets.API_TOKEN}" in p for p in refused["problems"])

        status, started = answers.call(
            "POST",
            "/workflows/secret-calls/executions",
            {"input": {"note": "${secrets.API_TOKEN}"}},
        )
        assert status == 202, started
        calls = started["execution_id"]
        status, started = answers.call("POST", "/workflows/secret-strict/executions", {"input": {}})
        assert status == 202, started
        strict = started["execution_id"]

        def finished(execution_id: str, wanted: str) -> dict[str, Any] | None:
            view = answers.call("GET", f"/executions/{execution_id}")[1]
            return view if view.get("status") == wanted else None

        def letter(execution_id: str) -> dict[str, Any] | None:
            found = answers.call("GET", "/dead-letters?kind=node")[1]["dead_letters"]
            return next((d for d in found if d["execution_id"] == execution_id), None)

        for execution_id in (calls, strict):
            until(lambda e=execution_id: finished(e, "failed"), f"{execution_id} to fail", 60)
        flaky_letter = until(lambda: letter(calls), "the dead letter of `flaky`")
        strict_letter = until(lambda: letter(strict), "the dead letter of `strict`")
        redrive: dict[str, Any] = {}
        status, body = answers.call("POST", f"/dead-letters/{flaky_letter['id']}/redrive", redrive)
        assert status == 202, body
        patched = {**redrive, "input": {"fixed": True}}
        status, body = answers.call("POST", f"/dead-letters/{strict_letter['id']}/redrive", patched)
        assert status == 202, body
        done = until(lambda: finished(calls, "completed"), "secret-calls to complete", 60)
        assert until(lambda: finished(strict, "completed"), "secret-strict to complete", 60)

        for path in [
            "/workflows",
            "/workflows/secret-calls",
            "/workflows/secret-strict",
            "/workflows/secret-calls/executions",
            "/workflows/secret-strict/executions",
            f"/executions/{calls}",
            f"/executions/{strict}",
            "/dead-letters",
            "/approvals",
            "/metrics",
            "/health",
            "/ready",
            "/openapi.json",
        ]:
            answers.call("GET", path)
    finally:
        worker.stop()

    found: dict[str, list[str]] = {}
    admin = AdminClient(broker.confluent())
    topics = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix))
    assert f"{prefix}.tasks" in topics and f"{prefix}.dead-letters" in topics, topics
    assert any("changelog" in t for t in topics), topics
    records = 0
    for topic in topics:
        with TopicReader(broker, topic) as reader:
            for record in reader.read_to_end():
                records += 1
                parts = [record.key or b"", record.value or b""]
                parts += [name.encode() + (value or b"") for name, value in record.headers]
                for name in hits(b"\0".join(parts)):
                    found.setdefault(name, []).append(
                        f"{topic}[{record.partition}]@{record.offset}"
                    )
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sst" or p.name.endswith(".log") for p in files), files
    for path in files:
        for name in hits(path.read_bytes()):
            found.setdefault(name, []).append(str(path))
    for name in hits(worker.log_path.read_bytes()):
        found.setdefault(name, []).append(str(worker.log_path))
    for request, raw in answers.raw:
        for name in hits(raw):
            found.setdefault(name, []).append(f"answer to {request}")
    assert found == {}, f"secret values found in: {found}"
    assert records > 50 and len(answers.raw) > 20, (records, len(answers.raw))

    assert flaky_letter["node_id"] == "flaky"
    assert "[secrets.API_TOKEN]" in flaky_letter["errors"][0]["message"], flaky_letter
    assert strict_letter["errors"][0] == {
        "type": "PermissionError",
        "message": "the helpdesk refused [secrets.API_TOKEN]",
        **{k: v for k, v in strict_letter["errors"][0].items() if k not in ("type", "message")},
    }

    # The secrets were used: the server saw them, the handler read them.
    assert server.seen[0] == {
        "path": "check",
        "auth": f"Bearer {API_TOKEN}",
        "key": HELPDESK_TOKEN,
    }
    assert [s["auth"] for s in server.seen[1:]] == [f"Bearer {API_TOKEN}"] * 2
    assert [s["note"] for s in server.seen[1:]] == ["${secrets.API_TOKEN}"] * 2
    output = done["output"]
    assert output["call"]["body"] == {
        "auth": "Bearer [secrets.API_TOKEN]",
        "key": "[secrets.HELPDESK_TOKEN]",
    }
    assert output["call"]["headers"]["x-echo"] == "Bearer [secrets.API_TOKEN]"
    assert output["read"] == {
        "length": len(HELPDESK_TOKEN),
        "careless": "token=[secrets.HELPDESK_TOKEN]",
    }
    assert output["flaky"]["body"]["you_sent"] == "Bearer [secrets.API_TOKEN]"
