"""The gateway's config in each namespace (ConfigMap ``kubellm-gateway``, key
``gateway.yaml``), kept current by the operator: every LLMService of the namespace, each
gateway canary at the weight the operator has stepped it to (``canary.py``).

The content is the same function ``kubellm render --gateway-config`` uses
(``gateway.fromspec.gateway_configmap``), with live weights instead of the specs'. The
ConfigMap has one owner reference per LLMService in it (none of them the controller), so it
goes with the last of them even if no finalizer ran; it carries no ``kubellm.dev/service``
label, so pruning one service never deletes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import GATEWAY_CONFIGMAP, CanaryRoute, gateway_configmap
from kubellm.operator.canary import route_from_status
from kubellm.operator.documents import spec_document
from kubellm.operator.errors import KubeApiError
from kubellm.operator.health import Problem
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.operator.kube import Kube
from kubellm.operator.ownership import FIELD_MANAGER, owner_reference
from kubellm.spec import LLMService, SpecError, parse_spec

log = logging.getLogger("kubellm.operator")

CONFIGMAP = next(k for k in MANAGED_KINDS if k.kind == "ConfigMap")
Body = dict[str, Any]


@dataclass
class GatewayConfigPublisher:
    kube: Kube
    field_manager: str = FIELD_MANAGER
    _decided: dict[tuple[str, str], CanaryRoute | None] = field(default_factory=dict)
    """Routes this process decided: newer than a peer's status until kopf has patched it."""
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _built: dict[str, tuple[Any, Body]] = field(default_factory=dict)
    """Per namespace, the last ConfigMap built and what it was built from: a pass whose
    inputs did not change builds nothing (parsing every peer each pass was O(services²):
    the 100-service benchmark's operator CPU doubled until this)."""

    async def publish(self, namespace: str, peers: Iterable[Body], own: Body | None = None,
                      route: CanaryRoute | None = None) -> Problem | None:
        """Write the namespace's gateway config from *peers* (the live LLMServices there),
        *own* (the service just reconciled, with its canary *route*) replacing its entry.
        A problem comes back for the status; the engines do not depend on it."""
        by_name = {p["metadata"]["name"]: p for p in peers}
        if own is not None:
            by_name[own["metadata"]["name"]] = own
            self._decided[(namespace, own["metadata"]["name"])] = route
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            try:
                return await self._publish(namespace, [p for p in by_name.values() if not p["metadata"].get("deletionTimestamp")])
            except KubeApiError as exc:
                return Problem("ApplyFailed", f"ConfigMap {GATEWAY_CONFIGMAP}: {exc}")

    async def _publish(self, namespace: str, bodies: list[Body]) -> Problem | None:
        bodies = sorted(bodies, key=lambda b: str(b["metadata"]["name"]))
        if not bodies:
            await self.kube.delete(CONFIGMAP, GATEWAY_CONFIGMAP, namespace)
            return None
        routes = [self._route(namespace, b) for b in bodies]
        key = tuple((b["metadata"]["name"], b["metadata"].get("uid"), b["metadata"].get("generation"), r)
                    for b, r in zip(bodies, routes))
        built = self._built.get(namespace)
        if built is not None and built[0] == key:
            desired = built[1]  # the same services at the same generations and weights
        else:
            result = self._build(namespace, bodies, routes)
            if not isinstance(result, dict):
                return result
            desired = result
            self._built[namespace] = (key, desired)
        live = await self.kube.get(CONFIGMAP, GATEWAY_CONFIGMAP, namespace)
        if live is None or live.get("data") != desired["data"] or _uids(live) != _uids(desired):
            await self.kube.apply(desired, self.field_manager)
        return None

    def _build(self, namespace: str, bodies: list[Body], routes: list[CanaryRoute | None]) -> Body | Problem | None:
        """The desired ConfigMap; a Problem when it cannot be built; None to leave it as is."""
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
        try:
            desired = gateway_configmap(namespace, services, canaries)
        except ConfigError as exc:
            return Problem("GatewayConfigInvalid", f"the gateway config of namespace {namespace} cannot be built: {exc}")
        owners = [{**owner_reference(b), "controller": False, "blockOwnerDeletion": False} for b in bodies if b["metadata"].get("uid")]
        desired["metadata"]["ownerReferences"] = owners
        return desired

    def _route(self, namespace: str, body: Body) -> CanaryRoute | None:
        key = (namespace, str(body["metadata"]["name"]))
        return self._decided[key] if key in self._decided else route_from_status(body.get("status"))

    def forget(self, namespace: str, name: str) -> None:
        self._decided.pop((namespace, name), None)


def _uids(obj: Body) -> list[str]:
    return sorted(str(o.get("uid")) for o in obj["metadata"].get("ownerReferences") or [])
