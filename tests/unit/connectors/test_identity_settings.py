"""The token verifier the settings configure, and which JWKS keys it uses
(braidflow/connectors/identity.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from braidflow.config import Settings, settings_from_env
from braidflow.connectors.identity import (
    IdentityProvider,
    JwksUnavailable,
    identity_provider,
    verifying_keys,
)
from braidflow.connectors.token_claims import ClaimNames

CONFIGURED = replace(
    Settings(),
    jwks_url="https://id.example.com/realms/acme/protocol/openid-connect/certs",
    jwt_issuer="https://id.example.com/realms/acme",
    jwt_audience="braidflow",
)


def test_without_a_jwks_url_there_is_no_verifier() -> None:
    assert identity_provider(Settings()) is None


def test_the_variables_configure_the_verifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_JWKS_URL", "https://login.example.com/keys")
    monkeypatch.setenv("BRAIDFLOW_JWT_ISSUER", "https://login.example.com/")
    monkeypatch.setenv("BRAIDFLOW_JWT_AUDIENCE", "api://braidflow")
    monkeypatch.setenv("BRAIDFLOW_JWT_ROLES_CLAIM", "groups")
    monkeypatch.setenv("BRAIDFLOW_JWKS_REFETCH_S", "5")
    verifier = identity_provider(settings_from_env())
    assert isinstance(verifier, IdentityProvider)
    assert verifier.keys.url == "https://login.example.com/keys"
    assert (verifier.issuer, verifier.audience) == ("https://login.example.com/", "api://braidflow")
    assert verifier.claims == ClaimNames(tenant="tenant", roles="groups")
    assert verifier.leeway_s == 30.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jwt_issuer": None}, "BRAIDFLOW_JWT_ISSUER is required with BRAIDFLOW_JWKS_URL"),
        ({"jwt_audience": ""}, "BRAIDFLOW_JWT_AUDIENCE is required with BRAIDFLOW_JWKS_URL"),
        ({"jwks_url": "http://id.example.com/certs"}, "use https"),
        ({"jwks_url": "file:///etc/jwks.json"}, "not an http"),
    ],
)
def test_a_setting_missing_or_unfit_is_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        identity_provider(replace(CONFIGURED, **changes))


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/jwks", "http://localhost/jwks"])
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    assert identity_provider(replace(CONFIGURED, jwks_url=url)) is not None


def jwk(public: Any, kid: str, **extra: Any) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else None
    algorithm = algorithm or jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, **extra}


def test_only_signing_keys_of_pinned_algorithms_are_used() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    document = {
        "keys": [
            jwk(rsa_key, "rsa"),
            jwk(rsa_key, "rsa-256", alg="RS256", use="sig"),
            jwk(ec_key, "ec"),
            jwk(rsa_key, "enc", use="enc"),
            jwk(rsa_key, "hs-named", alg="HS256"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {k: v for k, v in jwk(rsa_key, "x").items() if k != "kid"},
            "not a key",
        ]
    }
    keys = verifying_keys(document)
    assert set(keys) == {"rsa", "rsa-256", "ec"}
    assert keys["rsa-256"].algorithms == ("RS256",)
    assert keys["ec"].algorithms == ("ES256",)
    assert "HS256" not in keys["rsa"].algorithms and "RS256" in keys["rsa"].algorithms


@pytest.mark.parametrize("document", [[], {"keys": "none"}, {"other": []}])
def test_a_document_that_is_not_a_jwks_is_refused(document: object) -> None:
    with pytest.raises(JwksUnavailable, match="not a JWKS document"):
        verifying_keys(document)
