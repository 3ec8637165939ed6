"""CloudEvents 1.0 for domain events: the JSON event format and the Kafka protocol binding.

Pure: no Kafka client, and no clock or randomness except in `new_event`, whose
id and time can be passed in. Every `CloudEvent` is valid by construction;
anything malformed raises `CloudEventError`, which names the offending field.

Routing: an event of type `ticket.resolved` goes to topic `events.ticket`
(`topic_for`), and the event router subscribes to `events_topic_regex()`.
Only the first segment of the type names the topic, so topic names never hold
a dot after the prefix and the regex excludes dots: topics an operator adds
beside them (`events.ticket.dlq`, `events.ticket.retry`) are not swept into
the router.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from braidflow.topology.event_types import topic_segment_problem
from braidflow.topology.limits import parse_json

SPEC_VERSION = "1.0"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
HEADER_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"

REQUIRED = ("specversion", "id", "source", "type")
OPTIONAL = ("subject", "time", "datacontenttype", "dataschema")
# Names an extension can never take: the context attributes and the data members.
RESERVED = frozenset({*REQUIRED, *OPTIONAL, "data", "data_base64"})

_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII
)
_TOPIC_CHARS = re.compile(r"[a-zA-Z0-9._-]*")
_MAX_TOPIC_LENGTH = 249  # Kafka's own limit


class CloudEventError(ValueError):
    """A CloudEvent that breaks the spec; `field` names the attribute (None: the whole event)."""

    def __init__(self, field: str | None, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A CloudEvents 1.0 event. Extension attributes live in `extensions`."""

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_specversion(self.specversion)
        for name in ("id", "source", "type"):
            _check_text(name, getattr(self, name), required=True)
        for name in OPTIONAL:
            _check_text(name, getattr(self, name), required=False)
        if self.time is not None and not is_rfc3339(self.time):
            raise CloudEventError("time", f"{self.time!r} is not an RFC 3339 timestamp")
        for name, value in self.extensions.items():
            _check_extension(name, value)
        # A private copy: the caller's dict must not change a frozen event.
        object.__setattr__(self, "extensions", dict(self.extensions))

    @property
    def department(self) -> str | None:
        """The `department` extension: which department's workflows may see this event."""
        value = self.extensions.get("department")
        return None if value is None else str(value)

    def scope(self) -> dict[str, Any]:
        """What workflow expressions see as `event`: the attributes, data, and extensions flat."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "specversion": self.specversion,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
            "dataschema": self.dataschema,
            "data": self.data,
            **self.extensions,
        }


# --- validation ------------------------------------------------------------------


def is_rfc3339(text: str) -> bool:
    """True for an RFC 3339 date-time with an offset, e.g. `2026-11-22T10:00:00.123Z`."""
    if not _RFC3339.fullmatch(text):
        return False
    normal = text.upper().replace("Z", "+00:00")
    # RFC 3339 allows a leap second; datetime does not, and only the range is checked here.
    normal = normal[:17] + "59" + normal[19:] if normal[17:19] == "60" else normal
    try:
        datetime.fromisoformat(normal)
    except ValueError:
        return False
    return True


def _check_specversion(value: Any) -> None:
    _check_text("specversion", value, required=True)
    if value != SPEC_VERSION:
        raise CloudEventError("specversion", f"{value!r} is not supported (only 1.0)")


def _check_text(name: str, value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            raise CloudEventError(name, "required attribute is missing")
        return
    if not isinstance(value, str):
        raise CloudEventError(name, f"must be a string, not {type(value).__name__}")
    if not value:
        raise CloudEventError(name, "must not be empty")


def _check_extension(name: Any, value: Any) -> None:
    if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
        raise CloudEventError(
            str(name), "an extension attribute name is lowercase letters and digits only"
        )
    if name in RESERVED:
        raise CloudEventError(name, "is not an extension attribute")
    # The CloudEvents type system has no float, object or array; bool is an int here.
    if not isinstance(value, str | int):
        raise CloudEventError(
            name, f"an extension value is a string, integer or boolean, not {type(value).__name__}"
        )


# --- structured mode (the JSON event format) -------------------------------------


def from_structured(value: bytes | str | Mapping[str, Any]) -> CloudEvent:
    """An event from the JSON event format (`application/cloudevents+json`).

    A null attribute counts as absent; `data_base64` becomes bytes data. Text nested
    deeper than the limit raises LimitError (braidflow.topology.limits).
    """
    if isinstance(value, bytes | str):
        try:
            document = parse_json(value, "the event")
        except UnicodeDecodeError:
            raise CloudEventError(None, "a structured event must be UTF-8 JSON") from None
        except json.JSONDecodeError as exc:
            raise CloudEventError(None, f"not JSON: {exc.msg} at column {exc.colno}") from None
    else:
        document = value
    if not isinstance(document, Mapping):
        raise CloudEventError(None, "a structured event is a JSON object")
    members = {k: v for k, v in document.items() if v is not None}
    if "data" in members and "data_base64" in members:
        raise CloudEventError("data_base64", "must not appear together with data")
    data = members.get("data")
    if "data_base64" in members:
        data = _decode_base64(members["data_base64"])
    _check_specversion(members.get("specversion"))
    return CloudEvent(
        id=members.get("id"),
        source=members.get("source"),
        type=members.get("type"),
        specversion=members["specversion"],
        subject=members.get("subject"),
        time=members.get("time"),
        datacontenttype=members.get("datacontenttype"),
        dataschema=members.get("dataschema"),
        data=data,
        extensions={k: v for k, v in members.items() if k not in RESERVED},
    )


def _decode_base64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CloudEventError("data_base64", "must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    # binascii.Error for bad base64; ValueError for text that is not even ASCII.
    except ValueError as exc:
        raise CloudEventError("data_base64", f"not valid base64: {exc}") from None


def structured_document(event: CloudEvent) -> dict[str, Any]:
    """The event as a JSON-format object; bytes data goes to `data_base64`."""
    document: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    for name in OPTIONAL:
        if getattr(event, name) is not None:
            document[name] = getattr(event, name)
    document.update(event.extensions)
    if isinstance(event.data, bytes | bytearray):
        document["data_base64"] = base64.b64encode(event.data).decode("ascii")
    elif event.data is not None:
        document["data"] = event.data
    return document


def to_structured(event: CloudEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    """Kafka headers and value for structured mode: the whole event as JSON in the value."""
    content_type = f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8".encode()
    return [(CONTENT_TYPE_HEADER, content_type)], _dump(structured_document(event))


def _dump(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CloudEventError("data", f"cannot be written as JSON: {exc}") from None


# --- binary mode -----------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or "utf-8"
    return "utf-8"


def is_json_content_type(content_type: str | None) -> bool:
    """`application/json`, `text/json` and any `*/*+json`."""
    media = _media_type(content_type)
    return media in ("application/json", "text/json") or media.endswith("+json")


def to_binary(event: CloudEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    """Kafka headers and value for binary mode: attributes as `ce_` headers, data as the value.

    JSON (or untyped) data is written as JSON, text as its string, bytes as they
    are. An event without data gets an empty value, never a tombstone.
    """
    document = structured_document(event)
    document.pop("data", None)
    document.pop("data_base64", None)
    document.pop("datacontenttype", None)
    headers = [(f"{HEADER_PREFIX}{name}", _header_text(value)) for name, value in document.items()]
    if event.datacontenttype is not None:
        headers.append((CONTENT_TYPE_HEADER, event.datacontenttype.encode()))
    return headers, _binary_value(event)


def _header_text(value: str | int) -> bytes:
    if isinstance(value, bool):  # the CloudEvents canonical string form
        return b"true" if value else b"false"
    return str(value).encode()


def _binary_value(event: CloudEvent) -> bytes:
    data = event.data
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and not (
        event.datacontenttype is None or is_json_content_type(event.datacontenttype)
    ):
        try:
            return data.encode(_charset(event.datacontenttype))
        except (LookupError, UnicodeEncodeError) as exc:
            raise CloudEventError("data", f"cannot be encoded as declared: {exc}") from None
    return _dump(data)


def from_kafka(
    headers: Sequence[tuple[str, bytes | None]] | None, value: bytes | None
) -> CloudEvent:
    """The event carried by a Kafka record, in structured or binary mode.

    LimitError (braidflow.topology.limits) for JSON nested deeper than the limit.
    Structured when the `content-type` header is `application/cloudevents...`,
    or, leniently, when there are no `ce_` headers and the value is a JSON
    object with `specversion`; binary otherwise.
    """
    pairs = list(headers or [])
    content_type = _content_type_header(pairs)
    media = _media_type(content_type)
    if media.startswith("application/cloudevents"):
        if media not in (STRUCTURED_CONTENT_TYPE, "application/cloudevents"):
            raise CloudEventError(
                CONTENT_TYPE_HEADER, f"{content_type!r}: only single events in JSON are supported"
            )
        if not value:
            raise CloudEventError(None, "a structured-mode record has no value")
        return from_structured(value)
    has_ce_headers = any(name.startswith(HEADER_PREFIX) for name, _ in pairs)
    if not has_ce_headers:
        structured = _json_object(value)
        if structured is not None and "specversion" in structured:
            return from_structured(structured)
        raise CloudEventError(
            "specversion",
            "required attribute is missing (no ce_ headers, and not a structured event)",
        )
    return _from_binary(pairs, content_type, value)


def _content_type_header(pairs: list[tuple[str, bytes | None]]) -> str | None:
    # Kafka header names are case-sensitive; accept `Content-Type` from HTTP-minded producers.
    found = [raw for name, raw in pairs if name.lower() == CONTENT_TYPE_HEADER and raw is not None]
    if not found:
        return None
    return _header_value(CONTENT_TYPE_HEADER, found[-1])


def _header_value(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CloudEventError(name, "the header is not UTF-8") from None


def _json_object(value: bytes | None) -> Mapping[str, Any] | None:
    if not value or not value.lstrip().startswith(b"{"):
        return None
    try:
        document = parse_json(value, "the event")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return document if isinstance(document, Mapping) else None


def _from_binary(
    pairs: list[tuple[str, bytes | None]], content_type: str | None, value: bytes | None
) -> CloudEvent:
    attributes: dict[str, Any] = {}
    for header, raw in pairs:
        if not header.startswith(HEADER_PREFIX) or raw is None:
            continue
        name = header.removeprefix(HEADER_PREFIX)
        if name in attributes:
            raise CloudEventError(name, f"header {header} appears more than once")
        attributes[name] = _header_value(name, raw)
    for name in ("data", "data_base64", "datacontenttype"):
        if name in attributes:
            raise CloudEventError(name, f"is not carried in a {HEADER_PREFIX} header")
    _check_specversion(attributes.get("specversion"))
    return CloudEvent(
        id=attributes.get("id"),
        source=attributes.get("source"),
        type=attributes.get("type"),
        specversion=attributes["specversion"],
        subject=attributes.get("subject"),
        time=attributes.get("time"),
        datacontenttype=content_type,
        dataschema=attributes.get("dataschema"),
        data=_binary_data(content_type, value),
        extensions={k: v for k, v in attributes.items() if k not in RESERVED},
    )


def _binary_data(content_type: str | None, value: bytes | None) -> Any:
    """The value as data: JSON when declared (or undeclared and parsable), text/* as str."""
    media = _media_type(content_type)
    if value is None or (not value and (content_type is None or is_json_content_type(media))):
        return None
    if is_json_content_type(media):
        try:
            return parse_json(value, "the event's data")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CloudEventError("data", f"declared {media} but is not JSON: {exc}") from None
    if content_type is None:
        try:
            return parse_json(value, "the event's data")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return value
    if media.startswith("text/"):
        try:
            return value.decode(_charset(content_type))
        except LookupError:
            raise CloudEventError(
                "datacontenttype", f"unknown charset in {content_type!r}"
            ) from None
        except UnicodeDecodeError as exc:
            raise CloudEventError("data", f"not {exc.encoding} text") from None
    return value


# --- routing and creation --------------------------------------------------------


def check_topic_prefix(prefix: str) -> None:
    """Raise ValueError unless `prefix` can begin a Kafka topic name."""
    if not _TOPIC_CHARS.fullmatch(prefix):
        raise ValueError(f"topic prefix {prefix!r} may only hold a-z, A-Z, 0-9, '.', '_' and '-'")


def topic_for(event_type: str, prefix: str = "events.") -> str:
    """The topic an event type goes to: `ticket.resolved` -> `events.ticket`."""
    check_topic_prefix(prefix)
    if not isinstance(event_type, str):
        raise CloudEventError("type", f"{event_type!r} has no first segment to name a topic")
    problem = topic_segment_problem(event_type)
    if problem is not None:
        raise CloudEventError("type", problem)
    topic = f"{prefix}{event_type.split('.', 1)[0]}"
    if len(topic) > _MAX_TOPIC_LENGTH:
        raise CloudEventError("type", f"topic {topic[:40]}... is longer than Kafka allows")
    return topic


def events_topic_regex(prefix: str = "events.") -> str:
    """A librdkafka subscription regex for every topic `topic_for` makes with `prefix`.

    `^events\\.[a-zA-Z0-9_-]+$`: anchored, and without dots after the prefix.
    Plain syntax that librdkafka and Java's `Pattern` read alike; to combine it
    with other topics use a plain group, `^(a|b)$`: librdkafka refuses `(?:`.
    """
    check_topic_prefix(prefix)
    return "^" + prefix.replace(".", r"\.") + "[a-zA-Z0-9_-]+$"


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event(
    type: str,
    data: Any = None,
    *,
    source: str,
    subject: str | None = None,
    id: str | None = None,
    time: str | datetime | None = None,
    datacontenttype: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> CloudEvent:
    """A new event; `id` (uuid4 hex) and `time` (now, UTC, ms) are filled in when not given.

    `datacontenttype` defaults to `application/json` for data, or
    `application/octet-stream` for bytes; an event without data has none.
    """
    if isinstance(time, datetime):
        if time.tzinfo is None:
            raise CloudEventError("time", "a datetime needs a timezone")
        time = time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if datacontenttype is None and data is not None:
        is_bytes = isinstance(data, bytes | bytearray)
        datacontenttype = "application/octet-stream" if is_bytes else "application/json"
    return CloudEvent(
        id=uuid.uuid4().hex if id is None else id,
        source=source,
        type=type,
        subject=subject,
        time=_now_rfc3339() if time is None else time,
        datacontenttype=datacontenttype,
        data=data,
        extensions=dict(extensions or {}),
    )
