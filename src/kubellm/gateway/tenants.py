"""Tenants: API keys (kept only as SHA-256 digests, compared in constant time) and limits.

The keys file is what a mounted Secret holds: one key per line, either ``tenant:key``
or a bare key (tenant ``default``); ``#`` starts a comment. Limits are token buckets
(:mod:`kubellm.gateway.buckets`): RPM takes one token per request up front; TPM is checked up
front and charged after the response with the real prompt + completion tokens, so a
tenant that overspends waits until the bucket refills. The buckets live in a
:class:`~kubellm.gateway.limits.LimitStore` keyed by tenant name, which a reloaded config's
registry takes over from the previous one (a reload keeps the buckets of the tenants it
keeps); with ``--workers`` it is the table every worker shares.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import jwt

from kubellm.gateway.buckets import Limits
from kubellm.gateway.clock import Clock
from kubellm.gateway.config import AuthConfig, JwtConfig, TenantConfig
from kubellm.gateway.errors import AuthenticationError, ConfigError, PermissionDeniedError, RateLimitedError
from kubellm.gateway.limits import LimitStore, LocalLimits

ANONYMOUS = "anonymous"
UNLISTED = "unlisted"  # the metrics label of a JWT tenant that neither the config nor the keys file names


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_keys_file(text: str, source: str) -> list[tuple[str, bytes]]:
    """(tenant, key digest) pairs; errors give the line number, never the key."""
    pairs: list[tuple[str, bytes]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tenant, sep, key = line.partition(":")
        if not sep:
            tenant, key = "default", line
        tenant, key = tenant.strip(), key.strip()
        if not tenant or len(key) < 8:
            raise ConfigError(f"{source}:{n}: expected 'tenant:key' with a key of 8 characters or more")
        pairs.append((tenant, digest(key)))
    return pairs


@dataclass
class Tenant:
    name: str
    models: frozenset[str]
    limits: Limits
    label: str  # the name in metrics: a configured name (bounded), never a key

    def allows(self, model: str) -> bool:
        return "*" in self.models or model in self.models


class JwtVerifier:
    """Verifies bearer JWTs with the keys of a JWKS file (signature, expiry, issuer, audience)."""

    def __init__(self, config: JwtConfig) -> None:
        try:
            self._jwks = jwt.PyJWKSet.from_json(config.jwks_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read JWKS file {config.jwks_file}: {exc.strerror}") from exc
        except jwt.PyJWTError as exc:
            raise ConfigError(f"JWKS file {config.jwks_file} is not a valid key set: {exc}") from exc
        self._config = config

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("ey")

    def tenant(self, token: str) -> str:
        c = self._config
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._jwks[kid] if kid is not None else self._jwks.keys[0]
            claims = jwt.decode(token, key=key, algorithms=list(c.algorithms), issuer=c.issuer, audience=c.audience,
                                options={"require": ["exp"], "verify_aud": c.audience is not None})
        except (jwt.PyJWTError, KeyError, IndexError) as exc:
            raise AuthenticationError(f"invalid token: {type(exc).__name__}") from None
        tenant = claims.get(c.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthenticationError(f"token has no {c.tenant_claim!r} claim")
        return tenant


def auth_files(auth: AuthConfig) -> tuple[Path, ...]:
    """The files a registry for *auth* reads when it is made (API keys, JWKS): a change to one
    needs a new registry, as a change to the config does."""
    named = (auth.api_keys_file, auth.jwt.jwks_file if auth.jwt is not None else None)
    return tuple(path for path in named if path is not None)


class TenantRegistry:
    def __init__(self, auth: AuthConfig, limits: LimitStore, keys: list[tuple[str, bytes]]) -> None:
        self.enabled = auth.api_keys_file is not None or auth.jwt is not None
        self._jwt = JwtVerifier(auth.jwt) if auth.jwt is not None else None
        self._keys = keys
        self.limits = limits
        self._configs = {t.name: t for t in auth.tenants}
        self._tenants: dict[str, Tenant] = {}
        # tenants the operator named: metric labels stay bounded whatever claims JWTs carry
        self._listed = set(self._configs) | {tenant for tenant, _ in keys} | {ANONYMOUS}

    @classmethod
    def from_config(cls, auth: AuthConfig, clock: Clock, previous: "TenantRegistry | None" = None) -> "TenantRegistry":
        """A registry for *auth*; it keeps *previous*'s buckets (a reload), else starts its own
        in this process (``--workers`` replaces them with the shared table: ``limits``)."""
        keys: list[tuple[str, bytes]] = []
        if auth.api_keys_file is not None:
            try:
                text = auth.api_keys_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read API keys file {auth.api_keys_file}: {exc.strerror}") from exc
            keys = parse_keys_file(text, str(auth.api_keys_file))
        return cls(auth, previous.limits if previous is not None else LocalLimits(clock), keys)

    def _tenant(self, name: str) -> Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            cfg = self._configs.get(name) or TenantConfig(name=name)
            tenant = Tenant(name, frozenset(cfg.models), Limits(cfg.rpm or 0, cfg.tpm or 0),
                            name if name in self._listed else UNLISTED)
            self._tenants[name] = tenant
        return tenant

    def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of a ``Bearer`` key; every stored digest is compared, in constant time."""
        if not self.enabled:
            return self._tenant(ANONYMOUS)
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        key = key.strip()
        if self._jwt is not None and self._jwt.looks_like_jwt(key):
            return self._tenant(self._jwt.tenant(key))
        presented = digest(key)
        found: str | None = None
        for tenant, stored in self._keys:
            if hmac.compare_digest(presented, stored):
                found = tenant
        if found is None:
            raise AuthenticationError("incorrect API key provided")
        return self._tenant(found)

    def admit(self, tenant: Tenant, model: str) -> None:
        """Check access and limits before a request is sent; takes one request from RPM."""
        if not tenant.allows(model):
            raise PermissionDeniedError(f"this API key may not use model {model!r}")
        if tenant.limits.any:
            refusal = self.limits.admit(tenant.name, tenant.limits)
            if refusal is not None:
                raise RateLimitedError(f"rate limit reached for {refusal.what} per minute",
                                       retry_after=refusal.retry_after)

    def charge(self, tenant: Tenant, tokens: int) -> None:
        """Reconcile TPM with the tokens the response really used."""
        if tenant.limits.tpm > 0 and tokens > 0:
            self.limits.charge(tenant.name, tenant.limits, float(tokens))
