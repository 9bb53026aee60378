"""The gateway's config for a set of LLMServices, as ConfigMaps (one per namespace). Pure.

A gateway serves every model of its namespace: its config (models, routing profiles,
canary splits, the EndpointSlice selector) is derived from all the services there by
:func:`kubellm.gateway.fromspec.gateway_config`, and mounted at ``/etc/kubellm/gateway``
for ``kubellm gateway --config /etc/kubellm/gateway/gateway.yaml``, which reloads it when
the ConfigMap changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import gateway_config
from kubellm.render.context import Obj
from kubellm.render.errors import RenderError
from kubellm.spec import LLMService

GATEWAY_CONFIGMAP = "kubellm-gateway"
GATEWAY_CONFIG_KEY = "gateway.yaml"
DEFAULT_NAMESPACE = "default"


def gateway_configmaps(services: Sequence[LLMService]) -> list[Obj]:
    """One ConfigMap per namespace holding the gateway config of that namespace's services."""
    by_namespace: dict[str, list[LLMService]] = {}
    for svc in services:
        by_namespace.setdefault(svc.metadata.namespace or DEFAULT_NAMESPACE, []).append(svc)
    return [_configmap(namespace, members) for namespace, members in sorted(by_namespace.items())]


def _configmap(namespace: str, services: list[LLMService]) -> Obj:
    _check_unique_models(namespace, services)
    try:
        config = gateway_config(sorted(services, key=lambda s: s.metadata.name), namespace)
    except ConfigError as exc:
        raise RenderError(f"gateway config of namespace {namespace!r}: {exc}") from exc
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": GATEWAY_CONFIGMAP, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "kubellm-gateway", "app.kubernetes.io/component": "gateway",
                                "app.kubernetes.io/managed-by": "kubellm", "app.kubernetes.io/part-of": "kubellm"}},
        "data": {GATEWAY_CONFIG_KEY: yaml.safe_dump(config, sort_keys=True)},
    }


def _check_unique_models(namespace: str, services: list[LLMService]) -> None:
    seen: dict[str, str] = {}
    for svc in services:
        served = svc.spec.model.served_name
        if served in seen:
            raise RenderError(f"namespace {namespace!r}: services {seen[served]!r} and {svc.metadata.name!r} both "
                              f"serve model {served!r}; one gateway routes by model name, so give one of them "
                              "another spec.model.servedName")
        seen[served] = svc.metadata.name
