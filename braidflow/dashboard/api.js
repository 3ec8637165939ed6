// The API as the signed-in person: the credential lives in sessionStorage (this tab only)
// and every call sends it as Authorization: Bearer. Never in a URL.
const KEY = "braidflow.credential";
const PREFIX = "/api/v1";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const credential = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(extra = {}) {
  const found = credential.get();
  return found ? { ...extra, Authorization: `Bearer ${found}` } : extra;
}

// `body` is sent as JSON, or as it is with another `type` (a definition's YAML).
export async function api(method, path, body, type = "application/json") {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.body = type === "application/json" ? JSON.stringify(body) : body;
    init.headers["Content-Type"] = type;
  }
  const reply = await fetch(PREFIX + path, init);
  const text = await reply.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: text };
  }
  if (!reply.ok) {
    throw new ApiError(reply.status, (parsed && parsed.error) || reply.statusText);
  }
  return parsed;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);

// Server-Sent Events read with fetch and a streaming body reader: EventSource cannot send
// Authorization. Calls onEvent({id, type, data}) for each event; resolves when the stream
// ends (the execution ended), rejects with ApiError when it cannot be opened.
export async function stream(path, onEvent, signal, lastEventId = null) {
  const extra = { Accept: "text/event-stream" };
  if (lastEventId) extra["Last-Event-ID"] = lastEventId;
  const reply = await fetch(PREFIX + path, { headers: headers(extra), signal });
  if (!reply.ok || !reply.body) throw new ApiError(reply.status, reply.statusText);
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: null, type: "message", data: "" };
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") event.id = text;
        else if (field === "event") event.type = text;
        else if (field === "data") data.push(text);
      }
      if (!data.length) continue;
      try {
        event.data = JSON.parse(data.join("\n"));
      } catch {
        event.data = data.join("\n");
      }
      onEvent(event);
    }
  }
}
