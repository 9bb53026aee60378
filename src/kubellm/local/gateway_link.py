"""The gateway of ``kubellm up``: its config derived from the spec, served in this process.

``gateway_config_for`` is pure: the same routing profile, scorer weights, session header
and API keys the service would have in the cluster, with endpoints left to the local
registry (:class:`kubellm.gateway.discovery.LocalDiscovery`) that the supervisor updates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from kubellm.gateway.app import GATEWAY, Gateway, build_gateway
from kubellm.gateway.config import AuthConfig, GatewayConfig, ModelConfig, RoutingProfile
from kubellm.gateway.discovery import LocalDiscovery
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import routing_profile
from kubellm.gateway.serve import SERVERS
from kubellm.local.errors import LocalError
from kubellm.spec import LLMService

SPEC_PROFILE = "spec"


def _profiles(service: LLMService) -> tuple[str, dict[str, RoutingProfile]]:
    """The same profile the cluster's gateway config would have (kubellm.gateway.fromspec)."""
    try:
        name, profile = routing_profile(service, SPEC_PROFILE)
    except ConfigError as exc:
        raise LocalError(exc.message) from exc
    if profile is not None:
        return name, {name: RoutingProfile.model_validate(profile)}
    known = GatewayConfig().all_profiles()
    if name not in known:
        raise LocalError(f"spec.routing.profile {name!r} is unknown to the gateway; "
                         f"use one of {', '.join(sorted(known))}, or list spec.routing.scorers")
    return name, {}


def gateway_config_for(service: LLMService, api_keys_file: Path | None) -> GatewayConfig:
    """The gateway config of *service* in local mode (endpoints come from the registry)."""
    spec = service.spec
    if spec.security.api_keys is not None and api_keys_file is None:
        ref = spec.security.api_keys.secret_ref
        raise LocalError(f"spec.security.apiKeys takes keys from Secret {ref.name}/{ref.key}, which exists only "
                         "in a cluster; pass --api-keys-file FILE holding the same lines (one key, or tenant:key, "
                         "per line)")
    profile, profiles = _profiles(service)
    model = ModelConfig(name=spec.model.served_name, profile=profile, scale_from_zero=spec.scaling.scale_to_zero)
    auth = AuthConfig(api_keys_file=api_keys_file) if api_keys_file is not None else AuthConfig()
    # Quick health and metric rounds: replicas come and go in seconds here.
    return GatewayConfig.model_validate({
        "models": [model], "profiles": profiles, "auth": auth, "session_header": spec.routing.session_header,
        "resilience": {"health_interval_s": 1.0, "scrape_interval_s": 0.5}, "access_log": False,
    })


@dataclass
class LocalGateway:
    gateway: Gateway
    discovery: LocalDiscovery
    port: int

    def set_endpoints(self, model: str, urls: list[str]) -> None:
        self.discovery.set_endpoints(model, urls)

    async def wait_routable(self, model: str, timeout: float) -> None:
        """Wait until the gateway itself can route *model* (its health check passed)."""
        if not await self.gateway.pools[model].wait_routable(timeout):
            raise LocalError(f"a replica is ready but the gateway's health check of it still fails after "
                             f"{timeout:g} s; see the replica logs")

    def held(self, model: str) -> int:
        """Requests the gateway holds for *model* while it scales from zero."""
        return self.gateway.held.get(model, 0)

    def outstanding(self) -> dict[str, int]:
        """Requests in flight through the gateway, per engine URL."""
        return {e.url: e.outstanding for e in self.gateway.endpoints()}


@asynccontextmanager
async def serve_gateway(config: GatewayConfig, host: str, port: int, discovery: LocalDiscovery,
                        activator: Callable[[str], Awaitable[None]]) -> AsyncIterator[LocalGateway]:
    """Serve the gateway on host:port (0: a free port) until the block exits."""
    app = build_gateway(config, discovery=[discovery], activator=activator)
    listening = SERVERS[config.server](app)  # the HTTP server the config names, as `kubellm gateway`
    try:
        bound = await listening.start(host, port, None)
    except OSError as exc:
        await listening.cleanup()
        raise LocalError(f"the gateway cannot listen on {host}:{port} ({exc.strerror}); "
                         "pass --port with a free port, or --port 0 to pick one") from exc
    try:
        yield LocalGateway(app[GATEWAY], discovery, bound)
    finally:
        app[GATEWAY].draining = True
        await listening.cleanup()
