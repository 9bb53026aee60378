"""The gateway config for a set of LLMServices, and the ConfigMaps ``kubellm render
--gateway-config`` emits it in (one per namespace).

Pure: services in, a plain dict out (validated by :func:`parse_config` before it is
returned). Endpoints are not listed: in the cluster they come from EndpointSlices whose
labels the renderer sets (``kubellm.dev/component=engine``, ``kubellm.dev/model`` = the
pool, ``kubellm.dev/role`` = prefill/decode); a gateway canary is its own pool,
``<served name>-canary``. API keys are read from ``<keys_dir>/<service name>`` (the
renderer mounts each service's Secret key there).

A canary's weight is the spec's unless the caller says otherwise: the operator passes the
weight it has stepped to (0 while the canary is not ready; see ``operator/canary.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kubellm.gateway.config import RoutingProfile, parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.scheduling.registry import SCORERS
from kubellm.spec import LLMService
from kubellm.spec.engine import STARTUP_SECONDS

# Spec scorer names (camelCase, as users write them) whose gateway plugin type is not simply
# their kebab-case form (queueDepth -> queue-depth needs no entry).
_SCORER_ALIASES = {"prefixCache": "prefix-affinity", "precisePrefixCache": "precise-prefix",
                   "session": "session-affinity"}


def scorer_type(name: str) -> str:
    """The gateway scorer type of a spec scorer name (prefixCache -> prefix-affinity)."""
    return _SCORER_ALIASES.get(name) or re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


def routing_profile(svc: LLMService, name: str) -> tuple[str, dict[str, Any] | None]:
    """(profile name, profile) of *svc*: its spec.routing.profile and no new profile, or
    *name* and a profile made of its spec.routing.scorers weights."""
    routing = svc.spec.routing
    if not routing.scorers and routing.precise_prefix is not None and routing.profile == "default":
        return name, _precise_default_profile()
    if not routing.scorers:
        return routing.profile, None
    scorers = []
    for key, weight in sorted(routing.scorers.items()):
        kind = scorer_type(key)
        if kind not in SCORERS:
            known = sorted({*_SCORER_ALIASES, *(re.sub(r"-(.)", lambda m: m.group(1).upper(), t) for t in SCORERS)})
            raise ConfigError(f"{svc.metadata.name}: spec.routing.scorers.{key} is not a gateway scorer "
                              f"(known: {', '.join(known)})")
        scorers.append({"type": kind, "weight": weight})
    return name, {"scorers": scorers}


PRECISE_MISS_BLOCKS = 16
"""The generated precise profile scores a prefix in blocks short of the best holder, 0 from
this many (a chat's history then counts against load; docs/gateway.md, issue 16 fourth pass)."""


def _precise_default_profile() -> dict[str, Any]:
    """The default profile with the engines' KV events in place of the gateway's estimate."""
    precise = {"type": "precise-prefix", "params": {"missBlocks": PRECISE_MISS_BLOCKS}}
    return {"scorers": [{**(precise if s.type == "prefix-affinity" else {"type": s.type}), "weight": s.weight}
                        for s in RoutingProfile().scorers]}


TOKENIZERS_DIR = "/var/lib/kubellm/tokenizers"
"""Where the gateway reads a served model's tokenizer.json (``<dir>/<served name>``)."""


def _precise(svc: LLMService) -> dict[str, Any]:
    """Model keys for precise prefix routing: hash as the engines do, subscribe to their events."""
    p = svc.spec.routing.precise_prefix
    if p is None:
        return {}
    sim = svc.spec.engine.kind == "sim"
    keys: dict[str, Any] = {"preciseTokenizer": "sim" if sim else "hf", "kvEventsPort": p.kv_events_port,
                            "kvHashAlgo": p.hash_algo, "kvBlockSize": p.block_size}
    if not sim:
        keys["tokenizerPath"] = f"{TOKENIZERS_DIR}/{svc.spec.model.served_name}"
    return keys | ({"kvHashSeed": p.hash_seed} if p.hash_seed is not None else {})


@dataclass(frozen=True)
class CanaryRoute:
    """Where a service's canary pool is and what share of requests it gets now."""

    weight: int
    """Percent of the model's requests; 0 keeps the pool configured but sends it nothing."""
    served_name: str
    """The model name the canary's engines serve."""


Canaries = Mapping[str, "CanaryRoute | None"]
"""Service name -> its canary route now (None: no canary), overriding the spec."""


def spec_canary(svc: LLMService) -> CanaryRoute | None:
    """The canary route *svc*'s spec asks for (rollout.strategy gatewayCanary), at its weight."""
    spec = svc.spec
    canary = spec.rollout.canary
    if spec.rollout.strategy != "gatewayCanary" or canary is None or not canary.uri:
        return None
    return CanaryRoute(canary.weight, canary.served_name or spec.model.served_name)


def _models(svc: LLMService, profile: str, route: CanaryRoute | None) -> list[dict[str, Any]]:
    spec = svc.spec
    served = spec.model.served_name
    main: dict[str, Any] = {"name": served, "profile": profile, "scaleFromZero": spec.scaling.scale_to_zero,
                            **_precise(svc)}
    if spec.serving.mode == "disaggregated":
        # a profile the spec names routes both pools; else they keep Disaggregation's own default
        main["disaggregation"] = {} if profile == "default" else {"prefillProfile": profile, "decodeProfile": profile}
        del main["profile"]
    out = [main]
    if route is not None:
        pool = f"{served}-canary"
        if route.weight > 0:
            main["canary"] = [{"model": pool, "weight": route.weight}]
        out.append({"name": pool, "servedName": route.served_name, "profile": profile})
    return out


def gateway_config(services: Sequence[LLMService], namespace: str, keys_dir: str = "/etc/kubellm/api-keys",
                   canaries: Canaries | None = None) -> dict[str, Any]:
    """One gateway config serving every service of *services* in *namespace*; canary
    weights from *canaries* when given (a service it does not list has no canary), else
    from the specs."""
    models: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    keyed = [s for s in services if s.spec.security.api_keys is not None]
    for svc in services:
        name, profile = routing_profile(svc, f"{svc.metadata.name}-routing")
        if profile is not None:
            profiles[name] = profile
        route = spec_canary(svc) if canaries is None else canaries.get(svc.metadata.name)
        models += _models(svc, name, route)
    config: dict[str, Any] = {
        "models": models, "profiles": profiles,
        "kubernetes": {"namespace": namespace, "labelSelector": "kubellm.dev/component=engine",
                       "modelLabel": "kubellm.dev/model", "portName": "http"},
    }
    if services:
        config["sessionHeader"] = services[0].spec.routing.session_header
    from_zero = [STARTUP_SECONDS[s.spec.engine.kind] for s in services if s.spec.scaling.scale_to_zero]
    if from_zero:  # hold a request while the engine starts, as long as its startup probe allows
        config["timeouts"] = {"activationS": max(from_zero)}
    if keyed:
        if len(keyed) > 1:
            raise ConfigError("one gateway reads one API keys file: give the services one shared Secret "
                              f"(services with keys: {', '.join(s.metadata.name for s in keyed)})")
        config["auth"] = {"apiKeysFile": f"{keys_dir}/{keyed[0].metadata.name}", **_tenants(keyed[0])}
    parse_config(config, source="(generated from LLMServices)")  # a bad result is a bug here, not later
    return config


def _tenants(svc: LLMService) -> dict[str, Any]:
    """The keyed service's tenant limits as the gateway's ``auth.tenants`` (none: no key)."""
    keys = svc.spec.security.api_keys
    tenants = [{"name": t.name, "models": list(t.models),
                **({"rpm": t.requests_per_minute} if t.requests_per_minute else {}),
                **({"tpm": t.tokens_per_minute} if t.tokens_per_minute else {})}
               for t in (keys.tenants if keys is not None else ())]
    return {"tenants": tenants} if tenants else {}


GATEWAY_CONFIGMAP = "kubellm-gateway"
GATEWAY_CONFIG_KEY = "gateway.yaml"
DEFAULT_NAMESPACE = "default"


def gateway_configmaps(services: Sequence[LLMService], canaries: Canaries | None = None) -> list[dict[str, Any]]:
    """One ConfigMap per namespace holding the gateway config of that namespace's services,
    mounted at ``/etc/kubellm/gateway`` for ``kubellm gateway --config
    /etc/kubellm/gateway/gateway.yaml`` (which reloads it when the ConfigMap changes)."""
    by_namespace: dict[str, list[LLMService]] = {}
    for svc in services:
        by_namespace.setdefault(svc.metadata.namespace or DEFAULT_NAMESPACE, []).append(svc)
    return [gateway_configmap(namespace, members, canaries) for namespace, members in sorted(by_namespace.items())]


def gateway_configmap(namespace: str, services: Sequence[LLMService], canaries: Canaries | None = None) -> dict[str, Any]:
    """The ConfigMap of one namespace's gateway (ConfigError for services it cannot route)."""
    _check_unique_models(namespace, services)
    config = gateway_config(sorted(services, key=lambda s: s.metadata.name), namespace, canaries=canaries)
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": GATEWAY_CONFIGMAP, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "kubellm-gateway", "app.kubernetes.io/component": "gateway",
                                "app.kubernetes.io/managed-by": "kubellm", "app.kubernetes.io/part-of": "kubellm"}},
        "data": {GATEWAY_CONFIG_KEY: yaml.safe_dump(config, sort_keys=True)},
    }


def _check_unique_models(namespace: str, services: Sequence[LLMService]) -> None:
    seen: dict[str, str] = {}
    for svc in services:
        served = svc.spec.model.served_name
        if served in seen:
            raise ConfigError(f"namespace {namespace!r}: services {seen[served]!r} and {svc.metadata.name!r} both "
                              f"serve model {served!r}; one gateway routes by model name, so give one of them "
                              "another spec.model.servedName")
        seen[served] = svc.metadata.name
