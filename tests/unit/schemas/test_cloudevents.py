"""CloudEvents 1.0 on Kafka: both content modes, what is rejected and why, and topic routing."""

from __future__ import annotations

import ast
import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braidflow.schemas import cloudevents
from braidflow.schemas.cloudevents import (
    CloudEvent,
    CloudEventError,
    events_topic_regex,
    from_kafka,
    from_structured,
    is_rfc3339,
    new_event,
    to_binary,
    to_structured,
    topic_for,
)

TICKET = CloudEvent(
    id="evt-1",
    source="/helpdesk",
    type="ticket.resolved",
    subject="ticket-42",
    time="2026-11-22T10:00:00.123Z",
    datacontenttype="application/json",
    dataschema="https://schemas.example.com/ticket-resolved.json",
    data={"ticket": 42, "priority": "high", "tags": ["vip"]},
    extensions={"department": "support", "region": "eu"},
)

SPEC_EXAMPLE_HEADERS: list[tuple[str, bytes | None]] = [
    ("ce_specversion", b"1.0"),
    ("ce_type", b"ticket.resolved"),
    ("ce_source", b"/helpdesk"),
    ("ce_id", b"evt-1"),
    ("ce_subject", b"ticket-42"),
    ("ce_time", b"2026-11-22T10:00:00Z"),
    ("content-type", b"application/json"),
]


def structured(**members: Any) -> dict[str, Any]:
    document = {"specversion": "1.0", "id": "evt-1", "source": "/helpdesk", "type": "t.x"}
    document.update(members)
    return {k: v for k, v in document.items() if v is not ...}


def binary_headers(**attributes: str | None) -> list[tuple[str, bytes | None]]:
    values = {"specversion": "1.0", "id": "evt-1", "source": "/helpdesk", "type": "t.x"}
    values.update(attributes)
    return [(f"ce_{k}", v.encode()) for k, v in values.items() if v is not None]


def error_of(call: Any, *args: Any) -> CloudEventError:
    with pytest.raises(CloudEventError) as caught:
        call(*args)
    return caught.value


# --- round trips -----------------------------------------------------------------


def test_an_event_survives_structured_mode_unchanged() -> None:
    headers, value = to_structured(TICKET)
    assert headers == [("content-type", b"application/cloudevents+json; charset=utf-8")]
    assert from_kafka(headers, value) == TICKET


def test_an_event_survives_binary_mode_unchanged() -> None:
    headers, value = to_binary(TICKET)
    assert json.loads(value) == TICKET.data
    assert from_kafka(headers, value) == TICKET


def test_binary_mode_headers_are_named_as_the_kafka_binding_says() -> None:
    headers, _ = to_binary(TICKET)
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", b"/helpdesk"),
        ("ce_type", b"ticket.resolved"),
        ("ce_subject", b"ticket-42"),
        ("ce_time", b"2026-11-22T10:00:00.123Z"),
        ("ce_dataschema", b"https://schemas.example.com/ticket-resolved.json"),
        ("ce_department", b"support"),
        ("ce_region", b"eu"),
        ("content-type", b"application/json"),
    ]


def test_a_binary_record_written_by_another_producer_reads_as_its_event() -> None:
    event = from_kafka(SPEC_EXAMPLE_HEADERS, b'{"ticket": 42}')
    assert event == CloudEvent(
        id="evt-1",
        source="/helpdesk",
        type="ticket.resolved",
        subject="ticket-42",
        time="2026-11-22T10:00:00Z",
        datacontenttype="application/json",
        data={"ticket": 42},
    )


def test_structured_mode_puts_every_attribute_in_the_json_value() -> None:
    _, value = to_structured(TICKET)
    assert json.loads(value) == {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/helpdesk",
        "type": "ticket.resolved",
        "subject": "ticket-42",
        "time": "2026-11-22T10:00:00.123Z",
        "datacontenttype": "application/json",
        "dataschema": "https://schemas.example.com/ticket-resolved.json",
        "department": "support",
        "region": "eu",
        "data": {"ticket": 42, "priority": "high", "tags": ["vip"]},
    }


def test_bytes_data_travels_as_data_base64_in_structured_mode() -> None:
    event = new_event(
        "scan.done", b"\x00\xffPNG", source="/scanner", id="e", time="2026-01-01T00:00:00Z"
    )
    headers, value = to_structured(event)
    document = json.loads(value)
    assert document["data_base64"] == base64.b64encode(b"\x00\xffPNG").decode()
    assert "data" not in document
    assert from_kafka(headers, value).data == b"\x00\xffPNG"


def test_bytes_data_is_the_record_value_as_is_in_binary_mode() -> None:
    event = new_event("scan.done", b"\x00\xffPNG", source="/scanner")
    headers, value = to_binary(event)
    assert value == b"\x00\xffPNG"
    assert ("content-type", b"application/octet-stream") in headers
    assert from_kafka(headers, value) == event


def test_text_data_is_written_as_text_not_as_a_json_string() -> None:
    event = new_event("note.added", "héllo", source="/notes", datacontenttype="text/plain")
    headers, value = to_binary(event)
    assert value == "héllo".encode()
    assert from_kafka(headers, value) == event
    headers, value = to_structured(event)
    assert json.loads(value)["data"] == "héllo"
    assert from_kafka(headers, value) == event


@pytest.mark.parametrize("encode", [to_structured, to_binary], ids=["structured", "binary"])
def test_an_event_without_data_reads_back_without_data(encode: Any) -> None:
    event = new_event("ping.sent", source="/pinger")
    assert event.datacontenttype is None
    headers, value = encode(event)
    assert from_kafka(headers, value) == event


def test_an_event_without_data_has_an_empty_value_in_binary_mode() -> None:
    headers, value = to_binary(new_event("ping.sent", source="/pinger"))
    assert value == b""
    assert all(name != "content-type" for name, _ in headers)


def test_binary_mode_writes_extension_values_as_strings() -> None:
    event = new_event("t.x", source="/s", extensions={"attempt": 3, "urgent": True, "quiet": False})
    headers, value = to_binary(event)
    assert ("ce_attempt", b"3") in headers
    assert ("ce_urgent", b"true") in headers
    assert ("ce_quiet", b"false") in headers
    assert from_kafka(headers, value).extensions == {
        "attempt": "3",
        "urgent": "true",
        "quiet": "false",
    }


def test_structured_mode_keeps_extension_value_types() -> None:
    event = new_event("t.x", source="/s", extensions={"attempt": 3, "urgent": True})
    assert from_kafka(*to_structured(event)).extensions == {"attempt": 3, "urgent": True}


def test_data_that_is_not_json_is_refused_when_writing() -> None:
    event = new_event("t.x", {"when": datetime(2026, 1, 1)}, source="/s")
    assert error_of(to_structured, event).field == "data"
    assert error_of(to_binary, event).field == "data"


# --- required attributes and specversion -----------------------------------------


@pytest.mark.parametrize("name", ["id", "type", "source", "specversion"])
def test_a_structured_event_missing_a_required_attribute_names_it(name: str) -> None:
    error = error_of(from_structured, structured(**{name: ...}))
    assert error.field == name
    assert str(error) == f"{name}: required attribute is missing"


@pytest.mark.parametrize("name", ["id", "type", "source", "specversion"])
def test_a_binary_record_missing_a_required_header_names_the_attribute(name: str) -> None:
    error = error_of(from_kafka, binary_headers(**{name: None}), b"{}")
    assert error.field == name
    assert str(error).startswith(f"{name}: required attribute is missing")


@pytest.mark.parametrize("name", ["id", "type", "source"])
def test_an_empty_required_attribute_is_refused(name: str) -> None:
    assert str(error_of(from_structured, structured(**{name: ""}))) == f"{name}: must not be empty"


def test_a_required_attribute_must_be_a_string() -> None:
    assert str(error_of(from_structured, structured(id=7))) == "id: must be a string, not int"


def test_another_specversion_is_refused() -> None:
    error = error_of(from_structured, structured(specversion="0.3"))
    assert error.field == "specversion"
    assert str(error) == "specversion: '0.3' is not supported (only 1.0)"
    error = error_of(from_kafka, binary_headers(specversion="0.3"), b"")
    assert str(error) == "specversion: '0.3' is not supported (only 1.0)"


def test_the_dataclass_itself_refuses_an_invalid_event() -> None:
    with pytest.raises(CloudEventError, match=r"^source: must not be empty$"):
        CloudEvent(id="e", source="", type="t.x")


def test_a_null_attribute_counts_as_absent() -> None:
    event = from_structured(structured(subject=None, time=None, region=None))
    assert event.subject is None
    assert event.time is None
    assert event.extensions == {}


# --- time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:00:00Z",
        "2026-11-22T10:00:00.123456789Z",
        "2026-11-22t10:00:00z",
        "2026-11-22T10:00:00+05:30",
        "2026-11-22T10:00:00-00:00",
        "2016-12-31T23:59:60Z",
    ],
)
def test_rfc3339_timestamps_are_accepted(text: str) -> None:
    assert is_rfc3339(text)
    assert from_structured(structured(time=text)).time == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:00:00",  # no offset
        "2026-11-22 10:00:00Z",
        "2026-11-22",
        "2026-13-01T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-W47-1T10:00:00Z",
        "\u0662\u0660\u0662\u0666-11-22T10:00:00Z",  # Arabic-Indic digits
        "yesterday",
        "",
    ],
)
def test_a_time_that_is_not_rfc3339_is_refused(text: str) -> None:
    error = error_of(from_structured, structured(time=text))
    assert error.field == "time"


def test_a_binary_record_with_a_bad_time_header_names_time() -> None:
    assert error_of(from_kafka, binary_headers(time="tomorrow"), b"").field == "time"


# --- extensions and department ---------------------------------------------------


def test_extensions_are_flat_in_the_expression_scope() -> None:
    assert TICKET.scope() == {
        "id": "evt-1",
        "type": "ticket.resolved",
        "source": "/helpdesk",
        "specversion": "1.0",
        "subject": "ticket-42",
        "time": "2026-11-22T10:00:00.123Z",
        "datacontenttype": "application/json",
        "dataschema": "https://schemas.example.com/ticket-resolved.json",
        "data": {"ticket": 42, "priority": "high", "tags": ["vip"]},
        "department": "support",
        "region": "eu",
    }


def test_department_comes_from_the_department_extension_in_either_mode() -> None:
    assert TICKET.department == "support"
    assert from_kafka(*to_binary(TICKET)).department == "support"
    assert from_kafka(binary_headers(department="people"), b"").department == "people"
    assert from_structured(structured(department="people")).department == "people"
    assert from_structured(structured()).department is None


@pytest.mark.parametrize("name", ["Department", "dept-id", "dept_id", "déjà"])
def test_an_extension_name_outside_lowercase_letters_and_digits_is_refused(name: str) -> None:
    error = error_of(from_structured, structured(**{name: "x"}))
    assert error.field == name
    assert "lowercase letters and digits" in str(error)


def test_an_extension_name_in_a_ce_header_is_checked_too() -> None:
    headers = [*binary_headers(), ("ce_Department", b"support")]
    assert error_of(from_kafka, headers, b"").field == "Department"


def test_a_long_extension_name_is_accepted_although_the_spec_advises_20_characters() -> None:
    name = "averyveryverylongextensionname"
    assert from_structured(structured(**{name: "x"})).extensions == {name: "x"}


def test_an_extension_value_must_be_a_string_integer_or_boolean() -> None:
    for value in ({"a": 1}, [1], 1.5):
        error = error_of(from_structured, structured(region=value))
        assert error.field == "region"


def test_an_extension_cannot_take_the_name_of_a_context_attribute() -> None:
    with pytest.raises(CloudEventError, match=r"^id: is not an extension attribute$"):
        CloudEvent(id="e", source="/s", type="t.x", extensions={"id": "other"})


def test_an_event_keeps_its_own_copy_of_the_extensions() -> None:
    extensions = {"department": "support"}
    event = CloudEvent(id="e", source="/s", type="t.x", extensions=extensions)
    extensions["department"] = "sales"
    assert event.department == "support"


# --- structured mode details ------------------------------------------------------


def test_structured_mode_reads_bytes_text_or_a_mapping() -> None:
    document = structured(data={"a": 1})
    as_text = json.dumps(document)
    assert (
        from_structured(as_text) == from_structured(as_text.encode()) == from_structured(document)
    )


def test_data_base64_becomes_bytes() -> None:
    encoded = base64.b64encode(b"\x01\x02").decode()
    event = from_structured(structured(data_base64=encoded, datacontenttype="image/png"))
    assert event.data == b"\x01\x02"


def test_data_and_data_base64_together_are_refused() -> None:
    error = error_of(from_structured, structured(data={"a": 1}, data_base64="AQI="))
    assert error.field == "data_base64"


@pytest.mark.parametrize("bad", ["not base64!", 42, "\U000bee37AA="])
def test_bad_data_base64_is_refused(bad: Any) -> None:
    assert error_of(from_structured, structured(data_base64=bad)).field == "data_base64"


def test_text_data_with_a_non_json_content_type_stays_a_string() -> None:
    event = from_structured(structured(datacontenttype="application/xml", data="<a/>"))
    assert event.data == "<a/>"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "a structured event is a JSON object"),
        (b"\xff", "UTF-8"),
    ],
)
def test_a_structured_value_that_is_not_a_json_object_is_refused(
    value: bytes, problem: str
) -> None:
    headers = [("content-type", b"application/cloudevents+json")]
    error = error_of(from_kafka, headers, value)
    assert error.field is None
    assert problem in str(error)


def test_a_structured_record_without_a_value_is_refused() -> None:
    assert "no value" in str(
        error_of(from_kafka, [("content-type", b"application/cloudevents+json")], None)
    )


@pytest.mark.parametrize(
    "content_type", ["application/cloudevents-batch+json", "application/cloudevents+avro"]
)
def test_batches_and_other_event_formats_are_refused(content_type: str) -> None:
    error = error_of(from_kafka, [("content-type", content_type.encode())], b"[]")
    assert error.field == "content-type"


def test_a_structured_value_without_a_content_type_header_is_still_recognised() -> None:
    value = json.dumps(structured(data={"a": 1})).encode()
    assert from_kafka(None, value).data == {"a": 1}
    assert from_kafka([("traceparent", b"00-abc")], value).data == {"a": 1}


def test_a_capitalised_content_type_header_is_understood() -> None:
    _, value = to_structured(TICKET)
    assert from_kafka([("Content-Type", b"application/cloudevents+json")], value) == TICKET


def test_a_record_that_is_no_cloudevent_at_all_names_specversion() -> None:
    error = error_of(from_kafka, [("content-type", b"application/json")], b'{"ticket": 42}')
    assert error.field == "specversion"
    assert "no ce_ headers" in str(error)


# --- binary mode details ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "value", "data"),
    [
        (b"application/json", b'{"a": 1}', {"a": 1}),
        (b"application/json; charset=utf-8", b"[1, 2]", [1, 2]),
        (b"application/vnd.helpdesk.ticket+json", b'"x"', "x"),
        (b"text/plain", "héllo".encode(), "héllo"),
        (b"text/csv; charset=latin-1", "héllo".encode("latin-1"), "héllo"),
        (b"application/octet-stream", b'{"a": 1}', b'{"a": 1}'),
        (b"application/xml", b"<a/>", b"<a/>"),
        (b"image/png", b"\x89PNG", b"\x89PNG"),
    ],
)
def test_the_content_type_decides_how_the_value_is_read(
    content_type: bytes, value: bytes, data: Any
) -> None:
    event = from_kafka([*binary_headers(), ("content-type", content_type)], value)
    assert event.data == data
    assert event.datacontenttype == content_type.decode()


@pytest.mark.parametrize(
    ("value", "data"), [(b'{"a": 1}', {"a": 1}), (b"12", 12), (b"\x89PNG", b"\x89PNG"), (b"", None)]
)
def test_without_a_content_type_json_is_decoded_and_anything_else_stays_bytes(
    value: bytes, data: Any
) -> None:
    event = from_kafka(binary_headers(), value)
    assert event.data == data
    assert event.datacontenttype is None


def test_a_tombstone_is_an_event_without_data() -> None:
    assert from_kafka([*binary_headers(), ("content-type", b"application/json")], None).data is None


def test_a_value_declared_json_that_is_not_json_names_data() -> None:
    error = error_of(from_kafka, [*binary_headers(), ("content-type", b"application/json")], b"{")
    assert error.field == "data"


def test_text_in_an_unknown_charset_names_datacontenttype() -> None:
    headers = [*binary_headers(), ("content-type", b"text/plain; charset=klingon")]
    assert error_of(from_kafka, headers, b"x").field == "datacontenttype"


def test_a_header_that_is_not_utf8_names_its_attribute() -> None:
    headers = [*binary_headers(), ("ce_subject", b"\xff\xfe")]
    assert str(error_of(from_kafka, headers, b"")) == "subject: the header is not UTF-8"


def test_a_repeated_ce_header_is_refused() -> None:
    headers = [*binary_headers(), ("ce_id", b"evt-2")]
    assert error_of(from_kafka, headers, b"").field == "id"


@pytest.mark.parametrize("name", ["data", "data_base64", "datacontenttype"])
def test_data_never_travels_in_a_ce_header(name: str) -> None:
    headers = [*binary_headers(), (f"ce_{name}", b"x")]
    assert error_of(from_kafka, headers, b"").field == name


def test_headers_other_than_ce_are_ignored_and_a_header_without_value_is_absent() -> None:
    headers = [*binary_headers(), ("traceparent", b"00-abc"), ("ce_subject", None)]
    event = from_kafka(headers, b"")
    assert event.subject is None
    assert event.extensions == {}


# --- routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "prefix", "topic"),
    [
        ("ticket.resolved", "events.", "events.ticket"),
        ("ticket", "events.", "events.ticket"),
        ("order-line.item.added", "events.", "events.order-line"),
        ("Ticket_2.x", "events.", "events.Ticket_2"),
        ("ticket.resolved", "t1a2.events.", "t1a2.events.ticket"),
    ],
)
def test_the_first_segment_of_the_type_names_the_topic(
    event_type: str, prefix: str, topic: str
) -> None:
    assert topic_for(event_type, prefix) == topic


@pytest.mark.parametrize(
    "event_type", ["", ".resolved", "tick et.resolved", "tícket.resolved", "a/b.c", "a:b"]
)
def test_a_type_that_cannot_name_a_topic_is_refused(event_type: str) -> None:
    error = error_of(topic_for, event_type)
    assert error.field == "type"
    assert str(error).startswith("type: ")


def test_a_type_too_long_for_a_kafka_topic_is_refused() -> None:
    assert error_of(topic_for, "x" * 250 + ".y").field == "type"


def test_a_prefix_that_cannot_begin_a_topic_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="topic prefix"):
        topic_for("ticket.resolved", "events/")
    with pytest.raises(ValueError, match="topic prefix"):
        events_topic_regex("ev ents.")


def test_the_subscription_regex_is_anchored_and_escapes_the_prefix() -> None:
    assert events_topic_regex() == r"^events\.[a-zA-Z0-9_-]+$"
    assert events_topic_regex("t1.events.") == r"^t1\.events\.[a-zA-Z0-9_-]+$"


@pytest.mark.parametrize(
    ("topic", "matches"),
    [
        ("events.ticket", True),
        ("events.order-line", True),
        ("events.Ticket_2", True),
        # topic_for never makes these: dots after the prefix are for topics beside
        # the event topics (dead letters, retries), which the router must not read.
        ("events.ticket.dlq", False),
        ("events.", False),
        ("other.ticket", False),
        ("xevents.ticket", False),
        ("eventsXticket", False),
        ("my.events.ticket", False),
    ],
)
def test_the_subscription_regex_matches_only_event_topics(topic: str, matches: bool) -> None:
    assert bool(re.search(events_topic_regex(), topic)) is matches


@given(
    st.from_regex(r"[a-zA-Z0-9_-]{1,30}(\.[a-z0-9.]{0,20})?", fullmatch=True),
    st.sampled_from(["events.", "t0123456789.events.", "acme-prod_events."]),
)
def test_every_topic_topic_for_makes_matches_the_regex(event_type: str, prefix: str) -> None:
    assert re.search(events_topic_regex(prefix), topic_for(event_type, prefix))


# --- new events ------------------------------------------------------------------


def test_a_new_event_gets_an_id_and_the_time_now() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    event = new_event("ticket.resolved", {"ticket": 42}, source="/helpdesk")
    assert re.fullmatch(r"[0-9a-f]{32}", event.id)
    assert event.time is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event.time)
    assert before <= datetime.fromisoformat(event.time) <= datetime.now(UTC)
    assert event.datacontenttype == "application/json"
    assert new_event("t.x", source="/s").id != new_event("t.x", source="/s").id


def test_a_new_event_keeps_the_id_and_time_it_is_given() -> None:
    event = new_event(
        "ticket.resolved",
        source="/helpdesk",
        subject="ticket-42",
        id="evt-1",
        time="2026-11-22T10:00:00Z",
        extensions={"department": "support"},
    )
    assert (event.id, event.time, event.subject) == ("evt-1", "2026-11-22T10:00:00Z", "ticket-42")
    assert event.department == "support"


def test_a_new_event_takes_an_aware_datetime_as_its_time() -> None:
    when = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert new_event("t.x", source="/s", time=when).time == "2026-11-22T10:00:00.000+01:00"
    assert new_event("t.x", source="/s", time=when.astimezone(UTC)).time == (
        "2026-11-22T09:00:00.000Z"
    )
    assert (
        error_of(lambda: new_event("t.x", source="/s", time=datetime(2026, 1, 1))).field == "time"
    )


def test_a_new_event_without_a_source_is_refused() -> None:
    assert error_of(lambda: new_event("t.x", source="")).field == "source"


def test_the_cloudevents_module_uses_no_kafka_client() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(Path(cloudevents.__file__).read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"confluent_kafka", "aiokafka", "faust", "aiohttp"}
    # Of braidflow, only the topic rule it shares with the engine's `publish` node, and the
    # limits every parser of outside input shares.
    assert {n for n in imported if n.startswith("braidflow")} == {
        "braidflow.topology.event_types",
        "braidflow.topology.limits",
    }
