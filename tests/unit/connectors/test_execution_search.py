"""Searching executions: the query parameters read into a search, and the SQL it becomes in
each dialect (the statements themselves run against both stores in the integration tests)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from braidflow.connectors.api.errors import BadRequest
from braidflow.connectors.api.execution_search import execution_search
from braidflow.connectors.execution_search import ExecutionSearch, InputMatch, condition
from braidflow.connectors.read_model_db import POSTGRESQL, SQLITE, read_model_location

FULL = ExecutionSearch(
    status="failed",
    from_ms=10,
    to_ms=20,
    inputs=(InputMatch(("customer", "name"), "ada"), InputMatch(("amount",), 5)),
    event_type="order.placed",
    event_id="evt-1",
)


def test_an_empty_search_adds_no_condition() -> None:
    assert condition(ExecutionSearch(), SQLITE) == ("", [])


def test_sqlite_reads_input_fields_with_a_json_path() -> None:
    text, params = condition(FULL, SQLITE)
    assert text == (
        " AND status = ? AND started_at >= ? AND started_at <= ?"
        " AND (input -> ?) = ? AND (input -> ?) = ? AND event_type = ? AND event_id = ?"
    )
    assert params == [
        "failed", 10, 20, '$."customer"."name"', '"ada"', '$."amount"', "5",
        "order.placed", "evt-1",
    ]  # fmt: skip


def test_postgresql_finds_input_fields_by_containment_then_checks_the_path() -> None:
    text, params = condition(FULL, POSTGRESQL)
    each = " AND input @> ?::jsonb AND ((input)::jsonb #> ?)::text = ?"
    assert text.count(each) == 2
    assert params[3:9] == [
        '{"customer":{"name":"ada"}}', ["customer", "name"], '"ada"',
        '{"amount":5}', ["amount"], "5",
    ]  # fmt: skip
    assert POSTGRESQL.statement(text).count("%s") == len(params)


def test_statements_are_written_once_and_take_each_dialects_parameters() -> None:
    statement = "UPDATE t SET at = {greatest}(at, :at) WHERE id = ? AND name LIKE 'a%'"
    assert SQLITE.statement(statement) == (
        "UPDATE t SET at = max(at, :at) WHERE id = ? AND name LIKE 'a%'"
    )
    assert POSTGRESQL.statement(statement) == (
        "UPDATE t SET at = greatest(at, %(at)s) WHERE id = %s AND name LIKE 'a%%'"
    )
    assert POSTGRESQL.statement("SELECT x::jsonb") == "SELECT x::jsonb"


def test_each_read_model_gets_a_schema_of_its_prefix_on_postgresql(tmp_path) -> None:
    assert read_model_location(None, tmp_path, "bf", "executions-index") == (
        tmp_path / "executions-index.sqlite"
    )
    located = read_model_location("postgresql://db/history", tmp_path, "bf.prod", "audit-index")
    assert located.schema == "bf_prod_audit_index"
    assert "history" not in repr(located)


def test_a_read_model_setting_that_is_no_postgresql_url_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="BRAIDFLOW_READ_MODEL"):
        read_model_location("mysql://db", tmp_path, "bf", "audit-index")


def test_query_parameters_become_a_search() -> None:
    query = MultiDict(
        [
            ("status", "failed"),
            ("from", "1970-01-01T00:00:00.010Z"),
            ("to", "1970-01-01T00:00:00.020Z"),
            ("input.customer.name", "ada"),
            ("input.amount", "5"),
            ("event_type", "order.placed"),
            ("event_id", "evt-1"),
            ("limit", "3"),
        ]
    )
    assert execution_search(query) == FULL


@pytest.mark.parametrize(
    ("raw", "value"),
    [("ada", "ada"), ('"42"', "42"), ("42", 42), ("true", True), ("null", None), ("4.5", 4.5)],
)
def test_an_input_value_is_json_when_it_is_a_scalar_else_a_string(raw: str, value: object) -> None:
    assert execution_search(MultiDict({"input.x": raw})).inputs == (InputMatch(("x",), value),)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("status", "lost"),
        ("from", "yesterday"),
        ("to", "2026-13-01T00:00:00Z"),
        ("from", "1970-01-01T00:00:01Z"),  # after `to` below
        ("input.", "x"),
        ("input.a..b", "x"),
        ("input.a b", "x"),
        ("input.x", "[1, 2]"),
        ("input.x", "y" * 501),
        ("event_type", ""),
        ("event_id", "e" * 501),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(name: str, raw: str) -> None:
    query = MultiDict({name: raw})
    if name == "from":
        query["to"] = "1970-01-01T00:00:00Z"
    with pytest.raises(BadRequest) as refused:
        execution_search(query)
    assert str(refused.value).startswith(f"{name}:")


def test_more_input_fields_than_allowed_are_refused() -> None:
    query = MultiDict({f"input.f{n}": "x" for n in range(11)})
    with pytest.raises(BadRequest, match=r"^input: 11 input fields"):
        execution_search(query)
