"""API keys (braidflow/api_keys.py): what a key is, what of it is stored, how it is checked."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from braidflow.access import Principal, Role
from braidflow.api_keys import KeyRecord, key_name_problem, looks_like_key, new_key, parse_key
from braidflow.key_commands import keys


def test_a_new_key_carries_its_public_id_and_256_random_bits() -> None:
    key, record = new_key("acme", Role.EDITOR, None, "ci", 1000, "ops")
    parsed = parse_key(key)
    assert parsed is not None and parsed[0] == record.id
    # 43 characters of base64url: 32 bytes.
    assert len(parsed[1]) == 43 and looks_like_key(key)
    assert new_key("acme", Role.EDITOR, None, "ci", 1000, "ops")[0] != key


def test_only_a_salted_hash_is_stored_never_the_key() -> None:
    key, record = new_key("acme", Role.VIEWER, None, "", 1000, "ops")
    secret = parse_key(key)[1]  # type: ignore[index]
    stored = record.encode()
    assert key.encode() not in stored and secret.encode() not in stored
    assert record.name == f"key-{record.id}"
    # Salted: the same secret under another salt hashes otherwise.
    other = KeyRecord(**{**record.__dict__, "salt": "00" * 16})
    assert not other.matches(secret) and record.matches(secret)


def test_a_key_is_the_principal_of_its_tenant_role_and_department() -> None:
    key, record = new_key("acme", Role.OPERATOR, "support", "sam", 1000, "ops")
    assert record.principal() == Principal("sam", "acme", {"support": Role.OPERATOR})
    assert KeyRecord.decode(record.encode()).matches(parse_key(key)[1])  # type: ignore[index]


def test_a_revoked_key_matches_nothing_and_keeps_no_hash() -> None:
    key, record = new_key("acme", Role.OWNER, None, "ops", 1000, "ops")
    revoked = record.revoke(2000, "ana")
    assert not revoked.matches(parse_key(key)[1])  # type: ignore[index]
    assert (revoked.hash, revoked.salt, revoked.revoked_by) == ("", "", "ana")
    assert "hash" not in revoked.listing() and "salt" not in revoked.listing()


def test_what_is_not_a_key_is_told_apart() -> None:
    assert parse_key("bfk_123_short") is None
    assert parse_key("eyJhbGciOi.token.sig") is None and not looks_like_key("eyJ.a.b")


@pytest.mark.parametrize("name", ["ana@acme.example", "cli:root", "key:ana"])
def test_a_key_name_a_token_subject_could_take_is_refused_naming_the_field(name: str) -> None:
    problem = key_name_problem(name)
    assert problem is not None and repr(name) in problem
    with pytest.raises(ValueError, match="may not contain"):
        new_key("acme", Role.OPERATOR, None, name, 1000, "ops")
    # Refused on the command line before any broker is asked.
    result = CliRunner().invoke(keys, ["create", "--role", "viewer", "--name", name])
    assert result.exit_code == 2 and "--name" in result.output, result.output


def test_plain_key_names_are_accepted() -> None:
    assert all(key_name_problem(n) is None for n in ("ana", "ci-deploy", "dev", "", "key-1"))
