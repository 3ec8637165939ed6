"""Secrets providers, the scope a task reads them in, and the redaction of what a call produced."""

from __future__ import annotations

import itertools
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
    secret_variable,
)


def test_the_environment_gives_braidflow_secret_variables_of_the_default_tenant() -> None:
    env = EnvironmentSecrets({"BRAIDFLOW_SECRET_CRM_TOKEN": "t0k", "CRM_TOKEN": "not this"})
    assert env.secret(DEFAULT_TENANT, "CRM_TOKEN") == "t0k"
    assert env.secret(DEFAULT_TENANT, "crm_token") is None
    assert env.secret("acme", "CRM_TOKEN") is None  # the default tenant's are not acme's
    assert env.describe(DEFAULT_TENANT, "X") == "variable BRAIDFLOW_SECRET_X"


def test_another_tenant_reads_braidflow_tenant_secret_variables_of_its_own() -> None:
    env = EnvironmentSecrets(
        {
            "BRAIDFLOW_TENANT_SECRET_ACME__CRM_TOKEN": "acme-t0k",
            "BRAIDFLOW_TENANT_SECRET_ACME_EU__CRM_TOKEN": "eu-t0k",
            "BRAIDFLOW_TENANT_SECRET_ACME__lower": "lower-v",
            "BRAIDFLOW_SECRET_ACME__CRM_TOKEN": "the default tenant's ACME__CRM_TOKEN",
            "BRAIDFLOW_TENANT_SECRET_DEFAULT__CRM_TOKEN": "not the default tenant's",
            "BRAIDFLOW_TENANT_SECRET_A___X": "meant for tenant a-",
            "BRAIDFLOW_TENANT_SECRET_A__B__X": "meant for tenant a--b",
        }
    )
    assert env.secret("acme", "CRM_TOKEN") == "acme-t0k"
    assert env.secret("acme-eu", "CRM_TOKEN") == "eu-t0k"
    assert env.secret("acme", "lower") == "lower-v"  # the name as written
    assert env.secret("acme", "LOWER") is None
    assert env.secret("other", "CRM_TOKEN") is None
    # The default tenant keeps its one spelling: its ACME__CRM_TOKEN is no tenant's secret.
    assert env.secret(DEFAULT_TENANT, "ACME__CRM_TOKEN") == "the default tenant's ACME__CRM_TOKEN"
    assert env.secret(DEFAULT_TENANT, "CRM_TOKEN") is None
    # Names whose spelling is ambiguous have no variable: tenant a cannot read what was
    # meant for a- or a--b, and those tenants have no variable either.
    assert env.secret("a", "_X") is None
    assert env.secret("a", "B__X") is None
    assert env.secret("a-", "X") is None
    assert env.secret("a--b", "X") is None
    assert env.describe("acme-eu", "K") == "variable BRAIDFLOW_TENANT_SECRET_ACME_EU__K"
    assert env.describe("a-", "X") == (
        "no variable (tenant 'a-' and secret 'X' have no unambiguous one)"
    )


def test_no_tenant_variable_is_also_the_plain_spelling_of_another_tenant_or_name() -> None:
    # Every tenant up to 4 characters of `a`, `b` and `-`, every name up to 3 of `X` and `_`:
    # the variable read for (tenant, name) is the upper-cased, `-` as `_`, `__`-joined
    # spelling of that pair and of no other, so a variable set for a tenant whose name has no
    # variable (a-, a--b) is read by no one.
    tenants = [
        "".join(chars)
        for size in range(1, 5)
        for chars in itertools.product("ab-", repeat=size)
        if chars[0] != "-"
    ]
    names = [
        "".join(chars) for size in range(1, 4) for chars in itertools.product("X_", repeat=size)
    ]
    spelt: dict[str, set[tuple[str, str]]] = {}
    for tenant, name in itertools.product(tenants, names):
        plain = f"BRAIDFLOW_TENANT_SECRET_{tenant.upper().replace('-', '_')}__{name}"
        spelt.setdefault(plain, set()).add((tenant, name))
    read = {
        (tenant, name): secret_variable(tenant, name)
        for tenant, name in itertools.product(tenants, names)
    }
    assert read[("a", "_X")] is None and read[("a-", "X")] is None  # the example collision
    served = {pair: variable for pair, variable in read.items() if variable is not None}
    for pair in (("a", "X"), ("a-b", "X_"), ("ab-a", "XXX"), ("b", "X_X")):
        assert pair in served, pair  # most pairs have a variable
    for pair, variable in served.items():
        assert spelt[variable] == {pair}, (pair, variable, spelt[variable])
    assert secret_variable(DEFAULT_TENANT, "X") is None
    assert secret_variable("Acme", "X") is None
    assert secret_variable("acme", "not-a-name") is None


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


def test_another_tenants_files_are_under_tenants_and_reach_no_one_else(tmp_path: Path) -> None:
    (tmp_path / "TOKEN").write_text("default-v\n")
    (tmp_path / "DEFAULT_ONLY").write_text("d\n")
    for tenant, value in (("acme", "acme-v"), ("acme-eu", "eu-v"), ("default", "never")):
        (tmp_path / "tenants" / tenant).mkdir(parents=True)
        (tmp_path / "tenants" / tenant / "TOKEN").write_text(value + "\r\n")
    (tmp_path / "tenants" / "acme" / "ONLY_ACME").write_text("a")
    secrets = DirectorySecrets(tmp_path)
    assert secrets.secret("acme", "TOKEN") == "acme-v"
    assert secrets.secret("acme-eu", "TOKEN") == "eu-v"
    assert secrets.secret(DEFAULT_TENANT, "TOKEN") == "default-v"  # not tenants/default
    assert secrets.secret("acme", "DEFAULT_ONLY") is None
    assert secrets.secret("acme-eu", "ONLY_ACME") is None
    assert secrets.secret("other", "TOKEN") is None
    assert secrets.secret(DEFAULT_TENANT, "ONLY_ACME") is None
    assert secrets.secret(DEFAULT_TENANT, "tenants") is None  # a directory, not a secret
    # No name or tenant leaves its tenant's directory.
    for tenant, name in (
        ("acme", "../acme-eu/TOKEN"),
        ("acme", "../../TOKEN"),
        ("../tenants/acme", "TOKEN"),
        ("acme/../acme-eu", "TOKEN"),
        ("..", "TOKEN"),
        ("Acme", "TOKEN"),
        (DEFAULT_TENANT, "tenants/acme/TOKEN"),
    ):
        assert secrets.secret(tenant, name) is None, (tenant, name)
    assert secrets.describe("acme", "K") == f"file {tmp_path / 'tenants' / 'acme' / 'K'}"
    assert secrets.describe("..", "K") == "no file (secret 'K' of tenant '..' has none)"


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
    (tmp_path / "tenants" / "acme").mkdir(parents=True)
    (tmp_path / "tenants" / "acme" / "BOTH").write_text("acme file\n")
    monkeypatch.setenv("BRAIDFLOW_TENANT_SECRET_ACME__BOTH", "acme env")
    assert provider.secret("acme", "BOTH") == "acme env"
    monkeypatch.delenv("BRAIDFLOW_TENANT_SECRET_ACME__BOTH")
    assert provider.secret("acme", "BOTH") == "acme file"
    assert provider.secret("acme", "FILE_ONLY") is None
    assert provider.describe("acme", "NONE") == (
        "variable BRAIDFLOW_TENANT_SECRET_ACME__NONE,"
        f" file {tmp_path / 'tenants' / 'acme' / 'NONE'}"
    )


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
