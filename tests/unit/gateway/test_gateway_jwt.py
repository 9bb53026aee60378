"""Bearer JWTs verified against a JWKS file (keys made here with `cryptography`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kubellm.gateway.clock import FakeClock
from kubellm.gateway.config import AuthConfig, JwtConfig, TenantConfig
from kubellm.gateway.errors import AuthenticationError, ConfigError
from kubellm.gateway.tenants import UNLISTED, TenantRegistry


@pytest.fixture(scope="module")
def keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


@pytest.fixture
def registry(tmp_path: Path, keys) -> TenantRegistry:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys[0].public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    api_keys = tmp_path / "keys"
    api_keys.write_text("ops:ops-key-123456\n")
    auth = AuthConfig(api_keys_file=api_keys, jwt=JwtConfig(jwks_file=jwks, issuer="https://idp", audience="kubellm"))
    return TenantRegistry.from_config(auth, FakeClock())


def _token(key, **claims) -> str:
    base = {"iss": "https://idp", "aud": "kubellm", "exp": int(time.time()) + 60, "tenant": "team-a"}
    return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def test_valid_token_names_the_tenant(registry, keys):
    assert registry.authenticate("Bearer " + _token(keys[0])).name == "team-a"
    assert registry.authenticate("Bearer ops-key-123456").name == "ops"  # API keys still work


@pytest.mark.parametrize("claims", [{"exp": int(time.time()) - 10}, {"iss": "https://evil"}, {"aud": "other"},
                                    {"tenant": ""}, {"tenant": None}])
def test_bad_claims_are_401(registry, keys, claims):
    with pytest.raises(AuthenticationError):
        registry.authenticate("Bearer " + _token(keys[0], **claims))


def test_wrong_signing_key_is_401(registry, keys):
    with pytest.raises(AuthenticationError):
        registry.authenticate("Bearer " + _token(keys[1]))


def test_none_algorithm_is_refused(registry):
    unsigned = jwt.encode({"tenant": "x", "exp": int(time.time()) + 60, "iss": "https://idp", "aud": "kubellm"},
                          None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(AuthenticationError):
        registry.authenticate("Bearer " + unsigned)


def test_bad_jwks_file_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": "nope"}')
    with pytest.raises(ConfigError, match="JWKS"):
        TenantRegistry.from_config(AuthConfig(jwt=JwtConfig(jwks_file=bad)), FakeClock())


def test_metric_labels_are_named_tenants_only(tmp_path: Path, keys):
    """A JWT's claim is the tenant, but only a tenant the config names gets its own label."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys[0].public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]}))
    api_keys = tmp_path / "keys"
    api_keys.write_text("ops:ops-key-123456\n")
    auth = AuthConfig(api_keys_file=api_keys, tenants=(TenantConfig(name="team-a"),),
                      jwt=JwtConfig(jwks_file=jwks, issuer="https://idp", audience="kubellm"))
    registry = TenantRegistry.from_config(auth, FakeClock())
    listed = registry.authenticate("Bearer " + _token(keys[0]))
    assert (listed.name, listed.label) == ("team-a", "team-a")
    for i in range(3):
        other = registry.authenticate("Bearer " + _token(keys[0], tenant=f"user-{i}"))
        assert (other.name, other.label) == (f"user-{i}", UNLISTED)
    assert registry.authenticate("Bearer ops-key-123456").label == "ops"
