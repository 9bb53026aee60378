"""Each namespace's gateway, kept by the operator: its config (ConfigMap ``kubellm-gateway``,
key ``gateway.yaml``: every LLMService of the namespace, each gateway canary at the weight
the operator has stepped it to, see ``canary.py``) and the gateway itself (Deployment,
Service, RBAC, NetworkPolicy, PDB, autoscaler, monitor: ``render/gateway.py``).

The config is the same function ``kubellm render --gateway-config`` uses
(``gateway.fromspec.gateway_configmap``), with live weights instead of the specs'. Owner
references and labels: see ``gatewayobjects.py``.

A service whose API-key Secret is missing (or lacks its key) is left out of the config, so
its model fails closed (unknown model) while the gateway serves the others, and its status
is Degraded naming the Secret. A ConfigMap edited by hand is put back and reported: the
running gateways ignore an invalid file (``gateway/serve.py`` keeps the last good config).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubellm.gateway.config import parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import GATEWAY_CONFIG_KEY, GATEWAY_CONFIGMAP, CanaryRoute, gateway_configmap
from kubellm.operator.canary import route_from_status
from kubellm.operator.documents import spec_document
from kubellm.operator.errors import KubeApiError
from kubellm.operator.gatewayobjects import client_url, gateway_status, keys_ref, owned, secret_problem
from kubellm.operator.health import Problem
from kubellm.operator.kinds import MANAGED_KINDS, ManagedKind, kind_of
from kubellm.operator.kube import EventSink, Kube
from kubellm.operator.ownership import FIELD_MANAGER
from kubellm.render.gateway import ADAPTER_RULES
from kubellm.render.gateway import NAME as GATEWAY_NAME
from kubellm.render.gateway import GatewaySettings, gateway_objects
from kubellm.spec import LLMService, SpecError, parse_spec

log = logging.getLogger("kubellm.operator")

CONFIGMAP = next(k for k in MANAGED_KINDS if k.kind == "ConfigMap")
SECRET = next(k for k in MANAGED_KINDS if k.kind == "Secret")
DEPLOYMENT = next(k for k in MANAGED_KINDS if k.kind == "Deployment")
GATEWAY_KINDS = [k for k in MANAGED_KINDS if k.kind in (
    "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "Service", "Deployment", "PodDisruptionBudget",
    "HorizontalPodAutoscaler", "PodMonitor")]
"""What render/gateway.py renders, all named kubellm-gateway."""
Body = dict[str, Any]
READ_TTL_S = 2.0


def _ignore(kind: str, message: str, reason: str) -> None:
    """The event sink of a publish no service asked for (a deletion's)."""


@dataclass
class Built:
    key: Any
    configmap: Body
    objects: list[Body]
    applied: bool = False
    """The gateway objects of this build were all applied once."""


@dataclass
class GatewayConfigPublisher:
    kube: Kube
    field_manager: str = FIELD_MANAGER
    settings: GatewaySettings | None = None
    """How the gateway runs; None: keep the config only and deploy no gateway."""
    _decided: dict[tuple[str, str], CanaryRoute | None] = field(default_factory=dict)
    """Routes this process decided: newer than a peer's status until kopf has patched it."""
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _built: dict[str, Built] = field(default_factory=dict)
    """Per namespace, the last build and what it was built from: a pass whose inputs did not
    change builds nothing (parsing every peer each pass was O(services²): the 100-service
    benchmark's operator CPU doubled until this)."""
    _status: dict[str, dict[str, Any]] = field(default_factory=dict)
    _reads: dict[tuple[str, str, str], tuple[float, Body | None]] = field(default_factory=dict)

    async def publish(self, namespace: str, peers: Iterable[Body], own: Body | None = None,
                      route: CanaryRoute | None = None, events: EventSink = _ignore) -> Problem | None:
        """Write the namespace's gateway from *peers* (the live LLMServices there), *own*
        (the service just reconciled, with its canary *route*) replacing its entry. A
        problem of *own* (or of the whole gateway) comes back for its status; the engines do
        not depend on it."""
        by_name = {p["metadata"]["name"]: p for p in peers}
        if own is not None:
            by_name[own["metadata"]["name"]] = own
            self._decided[(namespace, own["metadata"]["name"])] = route
        bodies = sorted((p for p in by_name.values() if not p["metadata"].get("deletionTimestamp")),
                        key=lambda b: str(b["metadata"]["name"]))
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            try:
                missing = await self._missing_secrets(namespace, bodies)
                problem = await self._publish(namespace, bodies, missing, events)
            except KubeApiError as exc:
                return Problem("ApplyFailed", f"gateway of namespace {namespace}: {exc}")
        mine = missing.get(str(own["metadata"]["name"])) if own is not None else None
        if mine is not None:
            return Problem("ApiKeySecretMissing", f"{mine}; the gateway serves the namespace's other models, "
                                                  "not this one, until it exists")
        return problem

    def status(self, namespace: str) -> dict[str, Any] | None:
        """status.gateway for the services of *namespace*, as of the last publish."""
        return self._status.get(namespace)

    async def _missing_secrets(self, namespace: str, bodies: list[Body]) -> dict[str, str]:
        missing: dict[str, str] = {}
        for body in bodies:
            ref = keys_ref(body)
            if ref is not None:
                problem = secret_problem(namespace, ref, await self._recent(SECRET, ref[0], namespace))
                if problem is not None:
                    missing[str(body["metadata"]["name"])] = problem
        return missing

    async def _recent(self, kind: ManagedKind, name: str, namespace: str, fresh: bool = False) -> Body | None:
        """The object as read at most READ_TTL_S ago (*fresh*: now). Every pass of every service
        of a namespace asks for its Secret and its gateway Deployment, under the namespace's
        lock: reading them each time cost O(services²) requests and serialised the passes."""
        now = time.monotonic()
        key = (kind.kind, namespace, name)
        cached = self._reads.get(key)
        if fresh or cached is None or now - cached[0] >= READ_TTL_S:
            cached = self._reads[key] = (now, await self.kube.get(kind, name, namespace))
        return cached[1]

    async def _publish(self, namespace: str, bodies: list[Body], missing: dict[str, str], events: EventSink) -> Problem | None:
        if not bodies:
            await self._delete(namespace)
            return None
        routes = [self._route(namespace, b) for b in bodies]
        key = (tuple((b["metadata"]["name"], b["metadata"].get("uid"), b["metadata"].get("generation"), r)
                     for b, r in zip(bodies, routes)), tuple(sorted(missing)))
        built = self._built.get(namespace)
        if built is None or built.key != key:
            result = await self._build(namespace, bodies, routes, missing)
            if isinstance(result, Built):
                result.key = key
            else:
                return result
            built = self._built[namespace] = result
        await self._apply_config(namespace, built, events)
        await self._apply_gateway(namespace, built, bodies)
        return None

    async def _build(self, namespace: str, bodies: list[Body], routes: list[CanaryRoute | None],
                     missing: dict[str, str]) -> Built | Problem | None:
        """The desired objects; a Problem when they cannot be built; None to leave them as they are."""
        services: list[LLMService] = []
        for body in bodies:
            try:
                services.append(parse_spec(spec_document(body)))
            except SpecError:
                # Leave the config as it is: dropping the service would take its model
                # off the gateway while its old engines still serve (its status says why).
                log.info("gateway config of %s not updated: LLMService %s is invalid", namespace, body["metadata"]["name"])
                return None
        canaries = {str(b["metadata"]["name"]): r for b, r in zip(bodies, routes)}
        served = [s for s in services if s.metadata.name not in missing]
        try:
            configmap = gateway_configmap(namespace, served, canaries)
        except ConfigError as exc:
            return Problem("GatewayConfigInvalid", f"the gateway config of namespace {namespace} cannot be built: {exc}")
        [configmap] = owned([configmap], bodies)
        objects: list[Body] = []
        if self.settings is not None:
            target = await self.kube.server_version()
            # every keyed service's Secret stays in the volume (optional): one that appears
            # later reaches the pods with the config that names it, in one kubelet update
            objects = owned(gateway_objects(namespace, services, self.settings, target), bodies)
        return Built(key=None, configmap=configmap, objects=objects)

    async def _apply_config(self, namespace: str, built: Built, events: EventSink) -> None:
        desired = built.configmap
        live = await self.kube.get(CONFIGMAP, GATEWAY_CONFIGMAP, namespace)
        if live is not None and live.get("data") == desired["data"] and _uids(live) == _uids(desired):
            return
        if live is not None and built.applied and live.get("data") != desired["data"]:
            events(*edited_by_hand(namespace, live))
        await self.kube.apply(desired, self.field_manager)

    async def _apply_gateway(self, namespace: str, built: Built, bodies: list[Body]) -> None:
        deployment = None
        if built.objects:
            deployment = await self._recent(DEPLOYMENT, GATEWAY_NAME, namespace)
            if not built.applied or deployment is None:
                for obj in built.objects:
                    if await self.kube.served(kind_of(obj)):  # a monitor without its CRD is left out
                        await self.kube.apply(obj, self.field_manager)
                deployment = await self._recent(DEPLOYMENT, GATEWAY_NAME, namespace, fresh=True)
        built.applied = True
        if self.settings is not None:
            self._status[namespace] = gateway_status(deployment, client_url(namespace, bodies, self.settings.service_port))

    async def _delete(self, namespace: str) -> None:
        """The last service went: the gateway goes (the garbage collector would also take it,
        through the owner references, but only after its ~30 s sweep)."""
        self._built.pop(namespace, None)
        self._status.pop(namespace, None)
        await self.kube.delete(CONFIGMAP, GATEWAY_CONFIGMAP, namespace)
        if self.settings is None:
            return
        for kind in GATEWAY_KINDS:
            if await self.kube.served(kind):
                await self.kube.delete(kind, GATEWAY_NAME, namespace)
        await self.kube.delete(CONFIGMAP, ADAPTER_RULES, namespace)

    def _route(self, namespace: str, body: Body) -> CanaryRoute | None:
        key = (namespace, str(body["metadata"]["name"]))
        return self._decided[key] if key in self._decided else route_from_status(body.get("status"))

    def forget(self, namespace: str, name: str) -> None:
        self._decided.pop((namespace, name), None)


def edited_by_hand(namespace: str, live: Body) -> tuple[str, str, str]:
    """The event for a live config that is not the one the operator wrote."""
    text = (live.get("data") or {}).get(GATEWAY_CONFIG_KEY)
    try:
        parse_config(yaml.safe_load(text or ""), source=f"ConfigMap {namespace}/{GATEWAY_CONFIGMAP}")
    except (ConfigError, yaml.YAMLError) as exc:
        why = exc.message if isinstance(exc, ConfigError) else f"not YAML: {exc}"
        return ("Warning", "GatewayConfigInvalidEdit",
                f"ConfigMap {GATEWAY_CONFIGMAP} was edited by hand and is not a valid gateway config ({why}); the running "
                "gateways keep their last good config; the operator wrote the generated config back")
    return ("Normal", "GatewayConfigRestored",
            f"ConfigMap {GATEWAY_CONFIGMAP} was edited by hand; the operator wrote the generated config back "
            "(edit the LLMServices instead)")


def _uids(obj: Body) -> list[str]:
    return sorted(str(o.get("uid")) for o in obj["metadata"].get("ownerReferences") or [])
