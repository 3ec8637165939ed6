"""Bearer tokens of an identity provider, signed with key pairs made here and checked against
a JWKS served by a real aiohttp server on 127.0.0.1 (braidflow/connectors/identity.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from suite_broker import SuiteBroker

from braidflow.access import Principal, Role
from braidflow.config import Settings
from braidflow.connectors.api.authentication import Authentication, principal_for
from braidflow.connectors.api.errors import Unauthorized, Unavailable
from braidflow.connectors.broker import free_port
from braidflow.connectors.identity import IdentityProvider, identity_provider
from braidflow.key_commands import with_keys
from braidflow.streams.key_ring import KeyRing

ISSUER = "https://id.example.com/realms/acme"
AUDIENCE = "braidflow"
FLOOR_S = 30.0

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(private: Any, kid: str) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        data = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return {**data, "kid": kid, "alg": "RS256", "use": "sig"}
    data = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": "ES256", "use": "sig"}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada@acme.example",
        "iat": now,
        "exp": now + 300,
        "tenant": "acme",
        "roles": ["viewer", "support:operator"],
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def signed(private: Any, kid: str, algorithm: str = "RS256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), private, algorithm=algorithm, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], signature: Any) -> str:
    """A token built by hand, as an attacker would: `signature(signing_input) -> bytes`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    return f"{signing_input}.{b64(signature(signing_input.encode()))}"


@dataclass
class Provider:
    """The identity provider's JWKS endpoint: the keys it publishes, the fetches it served."""

    keys: list[dict[str, Any]]
    url: str = ""
    fetches: int = 0
    down: bool = False
    # Sent in pieces this size, each written on its own (None: one response body).
    piece_bytes: int | None = None


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    served = Provider(keys=[public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")])

    async def jwks(request: web.Request) -> web.StreamResponse:
        served.fetches += 1
        if served.down:
            return web.json_response({"error": "maintenance"}, status=503)
        if served.piece_bytes is None:
            return web.json_response({"keys": served.keys})
        body = json.dumps({"keys": served.keys}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(body), served.piece_bytes):
            await response.write(body[start : start + served.piece_bytes])
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    served.url = f"http://127.0.0.1:{port}/jwks"
    yield served
    await runner.cleanup()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(provider: Provider, clock: Clock) -> IdentityProvider:
    settings = replace(
        Settings(),
        jwks_url=provider.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_refetch_s=FLOOR_S,
    )
    built = identity_provider(settings, clock=clock)
    assert built is not None
    return built


ADA = Principal("ada@acme.example", "acme", {None: Role.VIEWER, "support": Role.OPERATOR})


async def test_a_good_rsa_token_is_its_principal(
    verifier: IdentityProvider, provider: Provider
) -> None:
    assert await verifier.principal(signed(RSA_KEY, "rsa-1")) == ADA
    assert await verifier.principal(signed(RSA_KEY, "rsa-1", sub="bob")) == replace(ADA, name="bob")
    assert provider.fetches == 1


async def test_a_good_ec_token_is_its_principal(verifier: IdentityProvider) -> None:
    assert await verifier.principal(signed(EC_KEY, "ec-1", "ES256")) == ADA


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 600}, "token: expired"),
        ({"aud": "another-app"}, "token: wrong audience"),
        ({"iss": "https://id.example.com/realms/other"}, "token: wrong issuer"),
        ({"exp": None}, "token: claim 'exp' missing"),
        ({"aud": None}, "token: claim 'aud' missing"),
        ({"roles": ["admin"]}, "token: claim 'roles': 'admin' is not a role"),
        ({"tenant": "Acme Corp"}, "token: claim 'tenant': tenant 'Acme Corp'"),
    ],
)
async def test_a_token_refused_names_why(
    verifier: IdentityProvider, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason) as refused:
        await verifier.principal(signed(RSA_KEY, "rsa-1", **changes))
    assert refused.value.status == 401


async def test_a_token_signed_by_another_key_has_a_bad_signature(
    verifier: IdentityProvider,
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized, match="token: bad signature"):
        await verifier.principal(signed(impostor, "rsa-1"))


async def test_an_unknown_key_id_refetches_once_then_is_refused(
    verifier: IdentityProvider, provider: Provider, clock: Clock
) -> None:
    await verifier.principal(signed(RSA_KEY, "rsa-1"))
    assert provider.fetches == 1
    with pytest.raises(Unauthorized, match="token: unknown key id 'gone'"):
        await verifier.principal(signed(RSA_KEY, "gone"))
    assert provider.fetches == 2
    # A flood of made-up key ids within the floor fetches nothing more, even all at once.
    flood = [verifier.principal(signed(RSA_KEY, uuid.uuid4().hex)) for _ in range(50)]
    refusals = await asyncio.gather(*flood, return_exceptions=True)
    assert all(isinstance(r, Unauthorized) for r in refusals)
    assert provider.fetches == 2
    clock.now += FLOOR_S
    with pytest.raises(Unauthorized, match="unknown key id"):
        await verifier.principal(signed(RSA_KEY, "gone"))
    assert provider.fetches == 3


async def test_a_key_the_provider_rotates_in_is_accepted_after_one_refetch(
    verifier: IdentityProvider, provider: Provider
) -> None:
    await verifier.principal(signed(RSA_KEY, "rsa-1"))
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.keys = [public_jwk(rotated, "rsa-2")]
    assert await verifier.principal(signed(rotated, "rsa-2")) == ADA
    assert await verifier.principal(signed(rotated, "rsa-2")) == ADA
    assert provider.fetches == 2


async def test_a_key_dropped_by_the_provider_stops_working_within_an_hour(
    verifier: IdentityProvider, provider: Provider, clock: Clock
) -> None:
    await verifier.principal(signed(RSA_KEY, "rsa-1"))
    provider.keys = [public_jwk(EC_KEY, "ec-1")]
    clock.now += 3600
    with pytest.raises(Unauthorized, match="unknown key id 'rsa-1'"):
        await verifier.principal(signed(RSA_KEY, "rsa-1"))
    assert provider.fetches == 2


async def test_alg_none_is_refused_without_asking_the_provider(
    verifier: IdentityProvider, provider: Provider
) -> None:
    unsigned = hand_made({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, lambda _: b"")
    with pytest.raises(Unauthorized, match="token: algorithm 'none' is not accepted"):
        await verifier.principal(unsigned)
    assert provider.fetches == 0


async def test_hs256_keyed_with_the_public_key_is_refused(verifier: IdentityProvider) -> None:
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )
    with pytest.raises(Unauthorized, match="token: algorithm 'HS256' is not accepted"):
        await verifier.principal(forged)


async def test_an_algorithm_of_another_key_type_is_refused(verifier: IdentityProvider) -> None:
    with pytest.raises(Unauthorized, match="token: algorithm ES256 does not fit key 'rsa-1'"):
        await verifier.principal(signed(EC_KEY, "rsa-1", "ES256"))


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c"])
async def test_a_malformed_token_is_refused(verifier: IdentityProvider, token: str) -> None:
    with pytest.raises(Unauthorized, match="token: malformed"):
        await verifier.principal(token)


async def test_a_provider_that_cannot_answer_is_a_503_and_not_hammered(
    verifier: IdentityProvider, provider: Provider, clock: Clock
) -> None:
    provider.down = True
    with pytest.raises(Unavailable, match="cannot be fetched: it answered 503") as refused:
        await verifier.principal(signed(RSA_KEY, "rsa-1"))
    assert refused.value.status == 503
    with pytest.raises(Unavailable):
        await verifier.principal(signed(RSA_KEY, "rsa-1"))
    assert provider.fetches == 1
    provider.down = False
    clock.now += FLOOR_S
    assert await verifier.principal(signed(RSA_KEY, "rsa-1")) == ADA


async def test_cached_keys_outlive_a_provider_outage(
    verifier: IdentityProvider, provider: Provider, clock: Clock
) -> None:
    await verifier.principal(signed(RSA_KEY, "rsa-1"))
    provider.down = True
    clock.now += 3600
    assert await verifier.principal(signed(RSA_KEY, "rsa-1")) == ADA
    assert provider.fetches == 2


async def test_a_jwks_sent_in_many_pieces_is_read_whole(
    verifier: IdentityProvider, provider: Provider
) -> None:
    others = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8)]
    provider.keys = [public_jwk(k, f"old-{n}") for n, k in enumerate(others)] + provider.keys
    provider.piece_bytes = 500
    assert await verifier.principal(signed(EC_KEY, "ec-1", "ES256")) == ADA


async def test_a_token_whose_subject_is_a_keys_name_is_refused_not_taken_for_the_key(
    verifier: IdentityProvider, broker: SuiteBroker, prefix: str
) -> None:
    settings = Settings(kafka=broker.connection, prefix=prefix).for_dev()

    async def check(ring: KeyRing) -> None:
        await ring.create("acme", Role.OPERATOR, None, "bob", int(time.time() * 1000), "test")
        auth = Authentication(ring, verifier)
        # One name, two credentials: a `by: bob` would not say which acted.
        with pytest.raises(Unauthorized) as refused:
            await principal_for(auth, f"Bearer {signed(RSA_KEY, 'rsa-1', sub='bob')}")
        assert "claim 'sub'" in str(refused.value) and "'bob'" in str(refused.value)
        # Another tenant's key of that name is no clash; nor is another subject.
        other = signed(RSA_KEY, "rsa-1", sub="bob", tenant="globex")
        assert (await principal_for(auth, f"Bearer {other}")).name == "bob"
        assert await principal_for(auth, f"Bearer {signed(RSA_KEY, 'rsa-1')}") == ADA

    await with_keys(settings, check)
