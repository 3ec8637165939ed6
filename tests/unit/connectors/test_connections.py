"""The connections file of llm and email nodes: what it may hold, and errors that name the file
and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from braidflow.connectors.connections import (
    Connection,
    ConnectionsError,
    SmtpConnection,
    load_connections,
    parse_connections,
)

ROOT = Path(__file__).parents[3]


def refusal(text: str) -> str:
    with pytest.raises(ConnectionsError) as refused:
        parse_connections(text, "conn.yaml")
    return str(refused.value)


def test_a_file_names_endpoints_their_key_headers_and_query() -> None:
    text = """
openai:
  url: https://api.openai.com/v1/
  key: ${secrets.OPENAI_API_KEY}
azure:
  url: https://r.openai.azure.com/openai/deployments/gpt
  headers: {api-key: "${secrets.AZURE_KEY}"}
  query: {api-version: "2024-10-21"}
"""
    assert parse_connections(text, "conn.yaml") == {
        "openai": Connection("openai", "https://api.openai.com/v1", "${secrets.OPENAI_API_KEY}"),
        "azure": Connection(
            "azure",
            "https://r.openai.azure.com/openai/deployments/gpt",
            None,
            {"api-key": "${secrets.AZURE_KEY}"},
            {"api-version": "2024-10-21"},
        ),
    }


def test_a_price_table_prices_a_models_tokens_per_million() -> None:
    text = """
openai:
  url: https://api.openai.com/v1
  prices:
    gpt-4o-mini: {prompt: 0.15, completion: 0.60}
    free: {prompt: 0, completion: 0}
"""
    [openai] = parse_connections(text, "conn.yaml").values()
    assert isinstance(openai, Connection)
    assert openai.prices == {"gpt-4o-mini": (0.15, 0.6), "free": (0.0, 0.0)}
    usage = {"prompt_tokens": 2_000, "completion_tokens": 500, "total_tokens": 2_500}
    # The model the answer names is looked up first, then the one the node asked for.
    assert openai.cost(("gpt-4o-mini-2024-07-18", "gpt-4o-mini"), usage) == 0.0006
    assert openai.cost(("free", None), usage) == 0
    assert openai.cost(("gpt-5", None), usage) is None


def test_no_file_and_an_empty_file_give_no_connections(tmp_path: Path) -> None:
    assert load_connections(None) == {}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_connections(empty) == {}


def test_a_key_written_out_is_refused_naming_the_file_and_field() -> None:
    message = refusal("openai: {url: 'https://api.openai.com/v1', key: sk-abc123}")
    assert message == (
        "BRAIDFLOW_CONNECTIONS: conn.yaml: openai.key: expected a secret reference, ${secrets.NAME}"
    )
    assert "sk-abc123" not in message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("local: {url: 'ftp://x'}", "local.url: expected an http(s):// or smtp(s):// URL"),
        ("mail: {url: 'smtp://m', key: k}", "mail.key: unknown field (an SMTP connection's:"),
        ("mail: {url: 'smtp://m:x'}", "mail.url: expected smtp://host:port"),
        ("mail: {url: 'smtp://u@m:25'}", "mail.url: expected smtp://host:port"),
        ("mail: {url: 'smtp://m', username: u}", "mail: a login needs both"),
        ("mail: {url: 'smtp://m', username: [u], password: p}", "mail.username: expected"),
        ("mail: {url: 'smtp://m', starttls: 'yes'}", "mail.starttls: expected true or false"),
        ("mail: {url: 'smtps://m', starttls: true}", "mail.starttls: smtps:// is TLS"),
        ("local: {}", "local.url"),
        ("local: {url: 'http://x', model: m}", "local.model: unknown field"),
        ("local: {url: 'http://x', headers: [a]}", "local.headers: expected an object"),
        ("local: {url: 'http://x', headers: {X-A: [1]}}", "local.headers.X-A: expected a text"),
        ("local: {url: 'http://x', query: {v: true}}", "local.query.v: expected a text"),
        ("'two words': {url: 'http://x'}", "two words: a connection's name is"),
        ("local: http://x", "local: expected an object with a url"),
        ("[local]", "conn.yaml: expected connection names"),
        ("local: {url: [", "conn.yaml is not YAML"),
        ("local: {url: 'http://x', prices: [m]}", "local.prices: expected models"),
        ("local: {url: 'http://x', prices: {m: 1}}", "local.prices.m: expected {prompt"),
        ("local: {url: 'http://x', prices: {m: {prompt: 1}}}", "local.prices.m.completion: expect"),
        ("local: {url: 'http://x', prices: {m: {prompt: -1, completion: 1}}}", "m.prompt: expect"),
        ("local: {url: 'http://x', prices: {m: {prompt: 1, completion: 1, x: 1}}}", "m.x: unknown"),
    ],
)
def test_a_mistake_is_refused_naming_the_field(text: str, named: str) -> None:
    message = refusal(text)
    assert message.startswith("BRAIDFLOW_CONNECTIONS: conn.yaml"), message
    assert named in message, message


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConnectionsError, match=re.escape(f"cannot read {missing}")):
        load_connections(missing)


def test_every_connections_file_the_llm_page_shows_loads() -> None:
    page = (ROOT / "docs" / "llm.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```yaml fragment\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert len(shown) >= 8
    for text in shown:
        assert parse_connections(text, "docs/llm.md"), text


def test_an_smtp_url_makes_a_mail_server_with_its_login_and_tls() -> None:
    text = """
mail:
  url: smtp://smtp.example.com:587
  username: braidflow
  password: ${secrets.SMTP_PASSWORD}
  starttls: true
relay:
  url: smtp://127.0.0.1
secure:
  url: smtps://smtp.example.com
  username: ${secrets.SMTP_USER}
  password: ${secrets.SMTP_PASSWORD}
"""
    assert parse_connections(text, "conn.yaml") == {
        "mail": SmtpConnection(
            "mail", "smtp.example.com", 587, False, True, "braidflow", "${secrets.SMTP_PASSWORD}"
        ),
        "relay": SmtpConnection("relay", "127.0.0.1", 25),
        "secure": SmtpConnection(
            "secure",
            "smtp.example.com",
            465,
            True,
            False,
            "${secrets.SMTP_USER}",
            "${secrets.SMTP_PASSWORD}",
        ),
    }


def test_an_smtp_password_written_out_is_refused_and_not_repeated() -> None:
    message = refusal("mail: {url: 'smtp://m:25', username: u, password: hunter2}")
    assert message == (
        "BRAIDFLOW_CONNECTIONS: conn.yaml: mail.password: expected a secret reference,"
        " ${secrets.NAME}"
    )


def test_every_connections_file_the_email_page_shows_loads() -> None:
    page = (ROOT / "docs" / "email.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```yaml fragment\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert shown
    for text in shown:
        connections = parse_connections(text, "docs/email.md")
        assert any(isinstance(c, SmtpConnection) for c in connections.values()), text
