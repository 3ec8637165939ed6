"""Secrets providers, the scope a task reads them in, and the redaction of what a call produced."""

from __future__ import annotations

from pathlib import Path

import pytest

from braidflow.access import DEFAULT_TENANT
from braidflow.secrets import (
    ChainedSecrets,
    DirectorySecrets,
    EnvironmentSecrets,
    Redaction,
    SecretError,
    SecretsAllowed,
    SecretScope,
    TaskSecrets,
    credentials_allowed,
    every_secret,
    provider_for,
)


def test_the_environment_gives_braidflow_secret_variables_of_the_default_tenant() -> None:
    env = EnvironmentSecrets({"BRAIDFLOW_SECRET_CRM_TOKEN": "t0k", "CRM_TOKEN": "not this"})
    assert env.secret(DEFAULT_TENANT, "CRM_TOKEN") == "t0k"
    assert env.secret(DEFAULT_TENANT, "crm_token") is None
    assert env.secret("acme", "CRM_TOKEN") is None  # another tenant: nothing yet, fails closed
    assert env.describe(DEFAULT_TENANT, "X") == "variable BRAIDFLOW_SECRET_X"


def test_a_directory_as_kubernetes_mounts_it_gives_one_secret_per_file(tmp_path: Path) -> None:
    # A Secret volume: files are symlinks into a `..data` directory swapped on rotation.
    data = tmp_path / "..2026_12_05" / "..data"
    data.mkdir(parents=True)
    (data / "CRM_TOKEN").write_text("t0k\n")
    (data / "WINDOWS").write_bytes(b"w1n\r\n")
    (data / "BARE").write_text("bare")
    (data / "TWO_LINES").write_text("line one\n\n")
    (data / "SPACED").write_text("  padded \t")
    for name in ("CRM_TOKEN", "WINDOWS", "BARE", "TWO_LINES", "SPACED"):
        (tmp_path / name).symlink_to(data / name)
    (tmp_path / "A_DIR").mkdir()
    secrets = DirectorySecrets(tmp_path)
    assert secrets.secret(DEFAULT_TENANT, "CRM_TOKEN") == "t0k"
    assert secrets.secret(DEFAULT_TENANT, "WINDOWS") == "w1n"
    assert secrets.secret(DEFAULT_TENANT, "BARE") == "bare"
    assert secrets.secret(DEFAULT_TENANT, "TWO_LINES") == "line one\n"  # one newline dropped
    assert secrets.secret(DEFAULT_TENANT, "SPACED") == "  padded \t"
    assert secrets.secret(DEFAULT_TENANT, "MISSING") is None
    assert secrets.secret(DEFAULT_TENANT, "A_DIR") is None
    assert secrets.secret(DEFAULT_TENANT, "../etc/passwd") is None
    assert secrets.secret("acme", "CRM_TOKEN") is None
    (data / "CRM_TOKEN").write_text("rotated\n")
    assert secrets.secret(DEFAULT_TENANT, "CRM_TOKEN") == "rotated"  # read at each use


def test_the_worker_provider_asks_the_environment_first_then_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "BOTH").write_text("from file\n")
    (tmp_path / "FILE_ONLY").write_text("file\n")
    monkeypatch.setenv("BRAIDFLOW_SECRET_BOTH", "from env")
    provider = provider_for(tmp_path)
    assert provider.secret(DEFAULT_TENANT, "BOTH") == "from env"
    assert provider.secret(DEFAULT_TENANT, "FILE_ONLY") == "file"
    assert provider.secret(DEFAULT_TENANT, "NONE") is None
    assert provider.describe(DEFAULT_TENANT, "NONE") == (
        f"variable BRAIDFLOW_SECRET_NONE, file {tmp_path / 'NONE'}"
    )
    assert provider_for(None).secret(DEFAULT_TENANT, "FILE_ONLY") is None


class Vault:
    """A provider of one's own: the Protocol is all it needs."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.asked: list[tuple[str, str]] = []

    def secret(self, tenant: str, name: str) -> str | None:
        self.asked.append((tenant, name))
        return self.values.get((tenant, name))

    def describe(self, tenant: str, name: str) -> str:
        return f"vault path {tenant}/{name}"


def test_a_scope_reads_its_tenants_secrets_and_names_what_it_cannot_give() -> None:
    vault = Vault({(DEFAULT_TENANT, "CRM_TOKEN"): "t0k-value", (DEFAULT_TENANT, "DB"): "db-value"})
    scope = SecretScope(ChainedSecrets([vault]))
    assert scope.lookup("CRM_TOKEN") == "t0k-value"
    assert vault.asked == [(DEFAULT_TENANT, "CRM_TOKEN")]
    with pytest.raises(SecretError) as missing:
        scope.lookup("NOPE")
    assert (missing.value.type, missing.value.message) == (
        "SecretNotFound",
        "secret 'NOPE' is not set for tenant 'default' (looked for: vault path default/NOPE)",
    )
    limited = SecretScope(
        vault, allowed=SecretsAllowed(listed=frozenset({"CRM_TOKEN"})), department="support"
    )
    with pytest.raises(SecretError) as refused:
        limited.lookup("DB")
    assert (refused.value.type, refused.value.message) == (
        "SecretNotAllowed",
        "secret 'DB' is not among the credentials department 'support' lists"
        " (it lists: 'CRM_TOKEN')",
    )
    assert "db-value" not in str(refused.value)
    assert limited.lookup("CRM_TOKEN") == "t0k-value"


def test_context_secrets_read_through_the_scope_and_remember_what_to_redact() -> None:
    scope = SecretScope(Vault({(DEFAULT_TENANT, "K"): "kv"}))
    secrets = TaskSecrets(scope)
    assert secrets["K"] == "kv"
    assert secrets.get("MISSING") is None
    assert secrets.get("MISSING", "fallback") == "fallback"
    with pytest.raises(SecretError, match="'MISSING'"):
        secrets["MISSING"]
    assert scope.redaction.text("got kv") == "got [secrets.K]"
    assert repr(secrets) == "<secrets>"
    with pytest.raises(SecretError, match="'K'"):
        TaskSecrets()["K"]


def test_redaction_takes_values_out_as_written_and_url_quoted() -> None:
    redaction = Redaction()
    assert redaction.value({"a": "s3cr/t+1"}) == {"a": "s3cr/t+1"}  # nothing read: unchanged
    redaction.add("TOKEN", "s3cr/t+1")
    redaction.add("PREFIX", "s3cr")
    redaction.add("EMPTY", "")
    assert redaction.text("GET https://x.test/?k=s3cr%2Ft%2B1 failed") == (
        "GET https://x.test/?k=[secrets.TOKEN] failed"
    )
    # The longer value first, so a value inside another does not leave a piece behind.
    assert redaction.value({"echo s3cr/t+1": ["Bearer s3cr/t+1", 3, None, "s3cr"]}) == {
        "echo [secrets.TOKEN]": ["Bearer [secrets.TOKEN]", 3, None, "[secrets.PREFIX]"]
    }


LISTS: dict[str, frozenset[str] | None] = {
    "support": frozenset({"HELPDESK"}),
    "sales": frozenset({"HELPDESK", "CRM"}),
    "ops": None,
}


def test_a_department_with_a_credentials_list_may_use_exactly_those() -> None:
    allowed = credentials_allowed("support", LISTS)
    assert allowed.refusal("HELPDESK", "support") is None
    assert allowed.refusal("CRM", "support") == (
        "secret 'CRM' is not among the credentials department 'support' lists"
        " (it lists: 'HELPDESK')"
    )
    # Listed by nobody, still not on the list.
    assert allowed.refusal("ANYTHING", "support") is not None
    assert credentials_allowed("quiet", {"quiet": frozenset()}).refusal("X", "quiet") == (
        "secret 'X' is not among the credentials department 'quiet' lists (it lists: none)"
    )


def test_without_a_list_a_workflow_uses_any_secret_no_department_lists() -> None:
    for department in (None, "ops", "undeployed"):
        allowed = credentials_allowed(department, LISTS)
        assert allowed.refusal("DB", department) is None
    assert credentials_allowed(None, LISTS).refusal("HELPDESK", None) == (
        "secret 'HELPDESK' is a credential of departments 'sales', 'support':"
        " a workflow of no department may not use it"
    )
    assert credentials_allowed("ops", LISTS).refusal("CRM", "ops") == (
        "secret 'CRM' is a credential of department 'sales':"
        " a workflow of department 'ops', which lists no credentials, may not use it"
    )


def test_an_install_that_lists_no_credentials_allows_every_secret() -> None:
    for department in (None, "ops"):
        assert credentials_allowed(department, {"ops": None}).refusal("X", department) is None
        assert every_secret(DEFAULT_TENANT, department).refusal("X", department) is None


def test_a_refused_secret_fails_the_lookup_before_any_value_is_read() -> None:
    vault = Vault({(DEFAULT_TENANT, "HELPDESK"): "hd-value"})
    scope = SecretScope(vault, allowed=credentials_allowed(None, LISTS))
    with pytest.raises(SecretError) as refused:
        scope.lookup("HELPDESK")
    assert refused.value.type == "SecretNotAllowed"
    assert vault.asked == []
