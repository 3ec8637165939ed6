"""An OpenAI-compatible chat-completions endpoint for the tests: deterministic, offline.

`POST /v1/chat/completions` answers by a script the prompt (the first user message) carries
after a ` | `: steps joined by ` then `, the n-th request with that prompt taking the n-th
step (the last one repeats). So a test writes what the model does, and a unique text before
the ` | ` keeps its count apart from other tests':

    "t-41 | text:Hello there"            answers "Hello there"
    "t-42 | json:{\"label\": \"bug\"}"    answers that text (the node parses it)
    "t-43 | malformed then json:{...}"   a broken JSON first, the JSON asked again
    "t-44 | 429:1 then text:ok"         429 with Retry-After: 1, then "ok"
    "t-45 | 500 then text:ok"            500, then "ok" (the node's retry asks again)
    "t-46 | slow:2 then text:ok"         answers after 2 s
    't-47 | call:weather:{"city": "Oslo"} then reply'
                                         calls the tool `weather` with those arguments
                                         (call id `call_<n>`), then answers the last tool
                                         message's content: "tool said: <content>"

A request with `stream: true` gets its answer as server-sent events: a role chunk, the
text a word per chunk (a call's arguments in two halves), a chunk with the finish reason,
with `stream_options.include_usage` a usage chunk, then `[DONE]`. The server also plays the
tools' side: `/tools/echo...` answers a JSON echo of the request (method, raw path, query,
JSON body, idempotency key, `X-Key` header; recorded in `tool_requests`), `/tools/page/{name}` an HTML page whose
`h1` is "Page <name>".

A prompt without ` | ` is answered `echo: <prompt>`. A draft (a system message that starts
as braidflow/topology/drafts.py's do) is answered as a model drafting would,
deterministically: first `BROKEN` (a definition braidflow refuses), then, once the prompt
holds braidflow's problems, `DRAFTED` (valid: issue 19's sentence as a workflow, a classify
node, an llm reply, the on-call lead's approval and an email; the request's `model` in its
model nodes), or with `--edit` the deployed definition given, its `description` set to the
request's sentence. Usage counts words: the prompt tokens are the words of every message,
the completion tokens the answer's; with `max_tokens` below those, the answer is cut and its
finish reason is `length`. Every request is recorded (`requests`). With a `key`, a request
without `Authorization: Bearer <key>` gets a 401.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from braidflow.connectors.broker import free_port
from braidflow.topology.drafts import INSTRUCTIONS

if TYPE_CHECKING:
    from background_loop import BackgroundLoop

SCRIPT = " | "
STEP = " then "


@dataclass(frozen=True)
class Seen:
    """One request the server received: its headers (names lower-cased) and its JSON body."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")


class ChatServer:
    """The endpoint's state: what it was asked, and how often each prompt."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.requests: list[Seen] = []
        self.tool_requests: list[dict[str, Any]] = []
        self._asked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_route("*", "/tools/echo{tail:.*}", self._echo)
        app.router.add_get("/tools/page/{name}", self._page)
        return app

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen = {
            "method": request.method,
            "path": request.rel_url.raw_path,
            "query": dict(request.query),
            "body": body,
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "x_key": request.headers.get("X-Key"),
        }
        with self._lock:
            self.tool_requests.append(seen)
        return web.json_response(seen)

    async def _page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        html = f"<html><body><h1>Page {name}</h1><p>words</p></body></html>"
        return web.Response(text=html, content_type="text/html")

    def seen(self, marker: str) -> list[Seen]:
        """The requests whose prompt holds `marker`, in the order they came."""
        with self._lock:
            return [s for s in self.requests if marker in s.prompt]

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        if self.key is not None and request.headers.get("Authorization") != f"Bearer {self.key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided")
        body = await request.json()
        seen = Seen({k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self.requests.append(seen)
            n = self._asked[seen.prompt]
            self._asked[seen.prompt] += 1
        if _system(body).startswith(INSTRUCTIONS):
            return web.json_response(_completion(body, _drafted(seen.prompt, body.get("model"))))
        step = _step(seen.prompt, n)
        if step == "500":
            return _error(500, "server_error", "The server had an error")
        if step.startswith("429"):
            wait = step.partition(":")[2]
            headers = {"Retry-After": wait} if wait else {}
            return _error(429, "rate_limit_exceeded", "Rate limit reached", headers)
        if step.startswith("slow:"):
            await asyncio.sleep(float(step.partition(":")[2]))
            step = "text:late"
        if step.startswith("call:"):
            name, _, arguments = step.removeprefix("call:").partition(":")
            answer = _completion(body, "", [_call(f"call_{n}", name, arguments)])
        else:
            answer = _completion(body, _content(step, seen.prompt, body))
        if body.get("stream") is True:
            return await _stream(request, body, answer)
        return web.json_response(answer)


BROKEN = """id: ticket-reply
nodes:
  - id: classify
    type: clasify
    params: {text: "${input.ticket}"}
edges:
  - {from: classify, to: send}
"""
"""The first answer to a draft: an unknown kind and an edge to a node that is not there."""

DRAFTED = """```yaml
id: ticket-reply
name: Reply to high-priority tickets
triggers:
  - event:
      types: [ticket.created]
      when: "has(event.data.priority) && event.data.priority == 'high'"
nodes:
  - id: classify
    type: classify
    params:
      connection: model
      model: MODEL
      text: "${input.subject}\\n\\n${input.body}"
      labels: {question: the customer asks something, bug: something is broken, other: anything else}
  - id: reply
    type: llm
    params:
      connection: model
      model: MODEL
      prompt: "Write a short reply to this ${nodes.classify.output.label} ticket: ${input.body}"
  - id: approve
    type: approval
    params:
      message: "Send this reply to ${input.customer_email}?\\n\\n${nodes.reply.output.answer}"
      approvers: [oncall-lead]
      on_timeout: reject
    timeout: 1d
  - id: decided
    type: decision
  - id: send
    type: email
    params:
      connection: mail
      from: Support <support@example.com>
      to: "${input.customer_email}"
      subject: "Re: ${input.subject}"
      text: "${nodes.reply.output.answer}"
  - id: sent
    type: end
    params:
      output: {label: "${nodes.classify.output.label}", by: "${nodes.approve.output.by}"}
  - id: not_sent
    type: end
    params:
      output: {label: "${nodes.classify.output.label}", sent: false}
edges:
  - {from: classify, to: reply}
  - {from: reply, to: approve}
  - {from: approve, to: decided}
  - {from: decided, to: send, when: "nodes.approve.output.choice == 'approve'"}
  - {from: decided, to: not_sent, default: true}
  - {from: send, to: sent}
```
"""
"""The answer to a draft told its problems (fenced, as models tend to answer)."""

_EDITED = "Change this deployed definition as the request says; keep its id:\n"


def _system(body: dict[str, Any]) -> str:
    return next((m["content"] for m in body["messages"] if m["role"] == "system"), "")


def _drafted(prompt: str, model: Any) -> str:
    if "braidflow found these problems" not in prompt:
        return BROKEN
    if _EDITED not in prompt:
        return DRAFTED.replace("MODEL", str(model))
    sentence = prompt.partition("\n")[0].removeprefix("Request: ")
    current = prompt.partition(_EDITED)[2].partition("\n\nYour last answer:")[0]
    lines = [line for line in current.splitlines() if not line.startswith("description:")]
    return "\n".join([lines[0], f"description: {json.dumps(sentence)}", *lines[1:]]) + "\n"


def _step(prompt: str, n: int) -> str:
    if SCRIPT not in prompt:
        return "echo"
    steps = prompt.partition(SCRIPT)[2].split(STEP)
    return steps[min(n, len(steps) - 1)].strip()


def _content(step: str, prompt: str, body: dict[str, Any]) -> str:
    if step == "malformed":
        return '{"answer": '
    if step == "reply":
        said = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        return f"tool said: {said[-1] if said else 'nothing'}"
    kind, _, rest = step.partition(":")
    if kind in ("text", "json"):
        return rest
    return f"echo: {prompt}"


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _completion(
    body: dict[str, Any], content: str, calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    words = content.split(" ")
    limit = body.get("max_tokens")
    finish = "tool_calls" if calls else "stop"
    if isinstance(limit, int) and len(words) > limit:
        content, finish = " ".join(words[:limit]), "length"
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
    completion_tokens = len(content.split()) + sum(
        len(c["function"]["arguments"].split()) for c in calls or ()
    )
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def _stream(
    request: web.Request, body: dict[str, Any], answer: dict[str, Any]
) -> web.StreamResponse:
    """`answer` as server-sent events, cut into chunks as an endpoint streaming it would."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    [choice] = answer["choices"]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {
            "id": answer["id"],
            "object": "chat.completion.chunk",
            "model": answer["model"],
            "choices": choices,
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    words = (message["content"] or "").split(" ") if message["content"] else []
    chunks += [chunk({"content": w if i == 0 else f" {w}"}) for i, w in enumerate(words)]
    for index, call in enumerate(message.get("tool_calls") or ()):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": arguments[:half]},
        }
        tail = {"index": index, "function": {"arguments": arguments[half:]}}
        chunks += [chunk({"tool_calls": [head]}), chunk({"tool_calls": [tail]})]
    chunks.append(chunk({}, choice["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**chunk({}), "choices": [], "usage": answer["usage"]})
    for each in chunks:
        await response.write(f"data: {json.dumps(each)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": code, "code": code}}
    return web.Response(
        status=status, text=json.dumps(payload), content_type="application/json", headers=headers
    )


@contextlib.contextmanager
def serving(loop: BackgroundLoop, key: str | None = None) -> Iterator[tuple[ChatServer, str]]:
    """A `ChatServer` (asking for `key`, if given) on a free port of 127.0.0.1, served by
    `loop` until the block ends; with its base URL (`.../v1`)."""
    server = ChatServer(key=key)
    port = free_port()
    runner = loop.serve(server.app(), "127.0.0.1", port)
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        loop.run(runner.cleanup())


def main() -> None:
    """Serve the endpoint on 127.0.0.1 by itself, to try llm nodes offline (docs/llm.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--key", help="the key a request must bear (default: none)")
    given = parser.parse_args()
    web.run_app(ChatServer(given.key).app(), host="127.0.0.1", port=given.port)


if __name__ == "__main__":
    main()
