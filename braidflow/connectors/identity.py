"""Bearer tokens of a company's identity provider: verified against its JWKS, read as a Principal.

`IdentityProvider.principal(token)` is the token verifier the authentication middleware
calls for a bearer credential that is not an API key; `identity_provider(settings)` builds
it (None when no JWKS URL is set).

Choices worth knowing:
- The JWKS is fetched with aiohttp (never a blocking client on the event loop) and cached.
  A token whose key id the cache lacks refetches it, one fetch at a time, and after a
  refetch or a failed fetch none follows for `jwks_refetch_s`: a flood of tokens with
  made-up key ids costs the provider at most one request per interval. A set older than `MAX_AGE_S` is refetched
  on its next use, so a key the provider dropped stops being accepted.
- Algorithms are pinned to the asymmetric ones (`SIGNING_ALGORITHMS`), and per key to the
  key's own type and `alg`: never `none`, never an HMAC keyed with a public key.
- A token must carry `exp`, `sub`, the configured issuer and audience; the claims are read
  by `token_claims`.
- A refused token is `Unauthorized` naming why. A JWKS that cannot be fetched (and no keys
  cached) is `Unavailable` (503): the token may be fine, the caller may retry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from braidflow.access import Principal
from braidflow.config import Settings
from braidflow.connectors.api.errors import Unauthorized, Unavailable
from braidflow.connectors.token_claims import (
    DEFAULT_CLAIMS,
    ClaimError,
    ClaimNames,
    principal_from_claims,
)

log = logging.getLogger(__name__)

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
SIGNING_ALGORITHMS = frozenset(RSA_ALGORITHMS) | frozenset(EC_ALGORITHMS.values())

MAX_AGE_S = 3600.0
"""How long a fetched JWKS is used before it is fetched again on its next use."""

FETCH_TIMEOUT_S = 10.0
MAX_JWKS_BYTES = 1024 * 1024


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or read; the message says why."""


@dataclass(frozen=True)
class VerifyingKey:
    """A public key of the provider and the algorithms a token signed with it may name."""

    key_id: str
    key: Any
    algorithms: tuple[str, ...]


def verifying_keys(document: object) -> dict[str, VerifyingKey]:
    """The signing keys of a JWKS document by key id; keys braidflow cannot use are skipped
    (no `kid`, `use` other than `sig`, a symmetric key, an algorithm not pinned)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("not a JWKS document (no 'keys' list)")
    found: dict[str, VerifyingKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        algorithms = _algorithms(entry)
        if not algorithms:
            continue
        try:
            parsed = jwt.PyJWK(entry, algorithms[0])
        except jwt.PyJWTError:
            continue
        found[entry["kid"]] = VerifyingKey(entry["kid"], parsed.key, algorithms)
    return found


def _algorithms(entry: Mapping[str, Any]) -> tuple[str, ...]:
    if entry.get("kty") == "RSA":
        family: tuple[str, ...] = RSA_ALGORITHMS
    elif entry.get("kty") == "EC" and entry.get("crv") in EC_ALGORITHMS:
        family = (EC_ALGORITHMS[entry["crv"]],)
    else:
        return ()
    named = entry.get("alg")
    if named is None:
        return family
    return (named,) if named in family else ()


class SigningKeys:
    """The provider's JWKS, cached.

    Fetched when first needed and when over `MAX_AGE_S` old; refetched for a key id it
    lacks. After a fetch that failed, or one a missing key id asked for, none follows for
    `refetch_floor_s`: meanwhile unknown key ids are refused and stale keys still serve.
    """

    def __init__(
        self,
        url: str,
        refetch_floor_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._floor = refetch_floor_s
        self._clock = clock
        self._keys: dict[str, VerifyingKey] = {}
        self._fetched_at: float | None = None
        self._quiet_until = -math.inf
        self._last_failure = ""
        self._lock = asyncio.Lock()

    async def key(self, key_id: str) -> VerifyingKey:
        """The key `key_id` names: Unauthorized when the provider has none such,
        Unavailable when the JWKS cannot be fetched and none is cached."""
        found = self._fresh(key_id)
        if found is not None:
            return found
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            found = self._fresh(key_id)
            if found is not None:
                return found
            now = self._clock()
            due = self._fetched_at is None or now - self._fetched_at >= MAX_AGE_S
            if now >= self._quiet_until:
                fetched = await self._refetch(now)
                # Only a due fetch that found the key leaves the next one free: a key
                # rotated in right after it is then fetched at once.
                if not (fetched and due and key_id in self._keys):
                    self._quiet_until = now + self._floor
        if self._fetched_at is None:
            raise Unavailable(
                f"the identity provider's JWKS ({self.url}) cannot be fetched:"
                f" {self._last_failure}; retry later"
            )
        found = self._keys.get(key_id)
        if found is None:
            raise Unauthorized(f"token: unknown key id {key_id!r} (not in the provider's JWKS)")
        return found

    def _fresh(self, key_id: str) -> VerifyingKey | None:
        if self._fetched_at is None or self._clock() - self._fetched_at >= MAX_AGE_S:
            return None
        return self._keys.get(key_id)

    async def _refetch(self, now: float) -> bool:
        try:
            self._keys = await self._download()
        except JwksUnavailable as exc:
            # Keep the keys cached: a provider down for a while should not lock everyone out.
            self._last_failure = str(exc)
            log.warning("cannot fetch the JWKS %s: %s", self.url, exc)
            return False
        self._fetched_at = now
        return True

    async def _download(self) -> dict[str, VerifyingKey]:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
                ) as session,
                session.get(self.url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status != 200:
                    raise JwksUnavailable(f"it answered {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable(f"over {MAX_JWKS_BYTES:,} bytes")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JwksUnavailable(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("not JSON") from None
        return verifying_keys(document)


# Checked in this order: InvalidSignatureError is a DecodeError, the expiry errors are
# InvalidTokenErrors.
_REASONS: tuple[tuple[type[jwt.exceptions.PyJWTError], str], ...] = (
    (jwt.exceptions.ExpiredSignatureError, "expired"),
    (jwt.exceptions.ImmatureSignatureError, "not valid yet (nbf or iat in the future)"),
    (jwt.exceptions.InvalidSignatureError, "bad signature"),
    (jwt.exceptions.InvalidAlgorithmError, "algorithm not accepted for its key"),
    (jwt.exceptions.InvalidIssuedAtError, "claim 'iat' must be a number"),
    (jwt.exceptions.InvalidSubjectError, "claim 'sub' must be a string"),
)


class IdentityProvider:
    """Verifies the bearer tokens of one identity provider (issuer) and reads their principal."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        claims: ClaimNames = DEFAULT_CLAIMS,
        leeway_s: float = 30.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.claims = claims
        self.leeway_s = leeway_s

    async def principal(self, token: str) -> Principal:
        """Who `token` stands for; Unauthorized naming why it is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token: malformed ({exc})") from None
        algorithm = header.get("alg")
        # Before any key lookup: a token that could never pass costs the provider nothing.
        if algorithm not in SIGNING_ALGORITHMS:
            raise Unauthorized(
                f"token: algorithm {algorithm!r} is not accepted"
                f" (one of {', '.join(sorted(SIGNING_ALGORITHMS))})"
            )
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise Unauthorized("token: no key id (kid) in its header")
        key = await self.keys.key(key_id)
        if algorithm not in key.algorithms:
            raise Unauthorized(
                f"token: algorithm {algorithm} does not fit key {key_id!r}"
                f" ({', '.join(key.algorithms)})"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token: {self._reason(exc)}") from None
        try:
            return principal_from_claims(claims, self.claims)
        except ClaimError as exc:
            raise Unauthorized(f"token: {exc}") from None

    def _reason(self, exc: jwt.PyJWTError) -> str:
        if isinstance(exc, jwt.exceptions.InvalidAudienceError):
            return f"wrong audience (this API is {self.audience!r})"
        if isinstance(exc, jwt.exceptions.InvalidIssuerError):
            return f"wrong issuer (expected {self.issuer!r})"
        if isinstance(exc, jwt.exceptions.MissingRequiredClaimError):
            return f"claim {exc.claim!r} missing"
        for kind, reason in _REASONS:
            if isinstance(exc, kind):
                return reason
        return f"malformed ({exc})"


def identity_provider(
    settings: Settings, *, clock: Callable[[], float] = time.monotonic
) -> IdentityProvider | None:
    """The token verifier `settings` configure; None without a JWKS URL. ValueError naming
    the variable when the issuer or audience is missing or the URL is not fit."""
    if not settings.jwks_url:
        return None
    problem = jwks_url_problem(settings.jwks_url)
    if problem is not None:
        raise ValueError(f"BRAIDFLOW_JWKS_URL={settings.jwks_url!r}: {problem}")
    # Without both, a token the provider issued for another application would pass.
    issuer, audience = settings.jwt_issuer, settings.jwt_audience
    if not issuer:
        raise ValueError("BRAIDFLOW_JWT_ISSUER is required with BRAIDFLOW_JWKS_URL")
    if not audience:
        raise ValueError("BRAIDFLOW_JWT_AUDIENCE is required with BRAIDFLOW_JWKS_URL")
    return IdentityProvider(
        SigningKeys(settings.jwks_url, settings.jwks_refetch_s, clock=clock),
        issuer=issuer,
        audience=audience,
        claims=ClaimNames(settings.jwt_tenant_claim, settings.jwt_roles_claim),
        leeway_s=settings.jwt_leeway_s,
    )


def jwks_url_problem(url: str) -> str | None:
    """Why braidflow will not fetch keys from `url`, or None. Plain http is refused except on
    loopback: whoever could change the keys in transit could sign any token."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname:
        if parts.hostname == "localhost":
            return None
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return None
        except ValueError:
            pass
        return "use https (plain http only on loopback)"
    return "not an http(s) URL"
