"""API keys: how one is made, what of it is stored, and how a presented key is checked.

A key reads `bfk_<id>_<secret>`: the id (12 hex digits) is public, so a key can be listed
and revoked without its secret; the secret is 32 random bytes (256 bits). Only a salted
SHA-256 of the secret is stored. A slow password hash (bcrypt, scrypt) exists to make
guessing a low-entropy password expensive; a 256-bit random secret cannot be guessed at
any speed, so one fast hash is as safe and keeps every request's check cheap.

A `KeyRecord` is what the keys topic holds under the key's id: the hash and who the key
acts for (tenant, role, department), or, once revoked, the same without the hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from braidflow.access import Principal, Role

KEY_PREFIX = "bfk_"
_KEY = re.compile(r"bfk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class KeyRecordError(ValueError):
    """A record of the keys topic that is not a key record."""


# Characters of identity providers' subjects (e-mail addresses) and of braidflow's own
# principal names (`cli:USER`), never of a key's name: see `key_name_problem`.
_NOT_IN_KEY_NAMES = "@:"


def key_name_problem(name: str) -> str | None:
    """Why `name` cannot name a key, or None when it can.

    A key's name is its principal's name, the `by` of what it does, and shares one
    namespace with tokens' subjects in approvers lists and the audit log. Key names
    never contain `@` or `:`, and a token whose subject is a key's name is refused
    (`connectors.api.authentication`), so a name always says which of the two acted.
    """
    if any(c in name for c in _NOT_IN_KEY_NAMES):
        return (
            f"name {name!r}: a key's name may not contain '@' or ':' (the forms of identity"
            " providers' subjects and of cli: names), so it cannot be taken for a token's"
        )
    return None


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: never the key itself, only the salted hash of its secret."""

    id: str
    tenant: str
    role: str
    department: str | None
    name: str
    created_at: int
    created_by: str
    salt: str
    hash: str
    revoked_at: int | None = None
    revoked_by: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def principal(self) -> Principal:
        """Who a request with this key acts for: the key's name, in its tenant, with its
        role in its department (or in all of the tenant's when it names none)."""
        return Principal(self.name, self.tenant, {self.department: Role(self.role)})

    def matches(self, secret: str) -> bool:
        """Whether `secret` is this key's, compared in constant time."""
        return not self.revoked and hmac.compare_digest(_hash(self.salt, secret), self.hash)

    def revoke(self, at_ms: int, by: str) -> KeyRecord:
        """This key revoked: the hash is dropped, the rest kept for listing."""
        return replace(self, revoked_at=at_ms, revoked_by=by, salt="", hash="")

    def listing(self) -> dict[str, Any]:
        """What a listing shows: everything but the salt and the hash."""
        shown = asdict(self)
        del shown["salt"], shown["hash"]
        return shown

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> KeyRecord:
        """The record `value` holds; KeyRecordError when it is not one."""
        try:
            fields = json.loads(value)
            record = cls(**fields)
            Role(record.role)
        except (ValueError, TypeError) as exc:
            raise KeyRecordError(f"not a key record: {exc}") from None
        return record


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a key of this form, or None when `key` is not an API key."""
    found = _KEY.fullmatch(key)
    return None if found is None else (found.group(1), found.group(2))


def looks_like_key(credential: str) -> bool:
    """Whether `credential` is meant as an API key (rather than a token)."""
    return credential.startswith(KEY_PREFIX)


def new_key(
    tenant: str,
    role: Role,
    department: str | None,
    name: str,
    now_ms: int,
    created_by: str,
) -> tuple[str, KeyRecord]:
    """A new key and the record to store for it; ValueError when `name` cannot name a
    key (`key_name_problem`)."""
    problem = key_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    salt = secrets.token_hex(16)
    record = KeyRecord(
        key_id,
        tenant,
        role.value,
        department,
        name or f"key-{key_id}",
        now_ms,
        created_by,
        salt,
        _hash(salt, secret),
    )
    return f"{KEY_PREFIX}{key_id}_{secret}", record
