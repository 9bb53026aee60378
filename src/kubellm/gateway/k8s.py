"""Kubernetes discovery: EndpointSlices selected by label, translated to pool URL lists.

Translation (:func:`slice_urls`, :class:`SliceBook`) is pure and unit-tested; only
:class:`KubernetesDiscovery` talks to the API server (a lightkube watch, restarted with
backoff when the connection drops). Which pool a slice feeds comes from a label
(``kubellm.dev/model`` by default; the operator's rendered Services carry it, and
``<model>/prefill`` / ``<model>/decode`` for disaggregated roles via ``kubellm.dev/role``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from typing import Any

from kubellm.gateway.config import KubernetesDiscovery as KubeConfig
from kubellm.gateway.discovery import EndpointRegistry
from kubellm.gateway.errors import ConfigError
from kubellm.render.context import label_value

log = logging.getLogger("kubellm.gateway.k8s")
ROLE_LABEL = "kubellm.dev/role"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_VALUE = re.compile(r"^[A-Za-z0-9._-]*$")


def pool_for_label(label_pool: str, pools: Iterable[str]) -> str | None:
    """The configured pool whose Kubernetes label form is *label_pool* (``<label>[/role]``):
    the renderer writes pool names through :func:`kubellm.render.context.label_value`."""
    for name in pools:
        model, slash, role = name.rpartition("/")
        if role not in ("prefill", "decode"):
            model, slash, role = name, "", ""
        if label_value(model) + slash + role == label_pool:
            return name
    return None


def parse_selector(selector: str) -> dict[str, str]:
    """``a=b,c=d`` -> dict; only equality terms (what the rendered objects use)."""
    out: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, sep, value = term.partition("=")
        if not sep or not _LABEL.match(key.strip()) or not _VALUE.match(value.strip()):
            raise ConfigError(f"kubernetes.labelSelector term {term!r}: use key=value terms joined by commas")
        out[key.strip()] = value.strip()
    return out


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def slice_pool(es: Any, model_label: str) -> str | None:
    labels = _get(_get(es, "metadata"), "labels") or {}
    model = labels.get(model_label)
    if not model:
        return None
    role = labels.get(ROLE_LABEL)
    return f"{model}/{role}" if role in ("prefill", "decode") else model


def slice_urls(es: Any, port_name: str) -> list[str]:
    """Ready addresses of one EndpointSlice as ``http://addr:port`` (IPv6 bracketed)."""
    ports = _get(es, "ports") or []
    port = next((_get(p, "port") for p in ports if _get(p, "name") == port_name), None)
    if port is None and len(ports) == 1:
        port = _get(ports[0], "port")
    if port is None:
        return []
    urls: list[str] = []
    for ep in _get(es, "endpoints") or []:
        conditions = _get(ep, "conditions")
        if conditions is not None and _get(conditions, "ready") is False:
            continue  # ready unset means ready, per the EndpointSlice API
        for addr in _get(ep, "addresses") or []:
            host = f"[{addr}]" if ":" in addr else addr
            urls.append(f"http://{host}:{port}")
    return sorted(urls)


class SliceBook:
    """Slices seen so far -> the URL list of each pool (a Service may have several slices)."""

    def __init__(self, model_label: str, port_name: str) -> None:
        self._model_label = model_label
        self._port_name = port_name
        self._slices: dict[str, tuple[str, list[str]]] = {}

    def apply(self, event: str, es: Any) -> tuple[str, list[str]] | None:
        """Record a watch event; returns (pool, its new URL list) when a pool changed."""
        meta = _get(es, "metadata")
        key = f"{_get(meta, 'namespace')}/{_get(meta, 'name')}"
        pool = slice_pool(es, self._model_label)
        old = self._slices.pop(key, None)
        if event != "DELETED" and pool is not None:
            self._slices[key] = (pool, slice_urls(es, self._port_name))
        changed = {p for p in (pool, old[0] if old else None) if p is not None}
        if not changed:
            return None
        target = pool if pool is not None else old[0]  # type: ignore[index]
        return target, self.urls(target)

    def urls(self, pool: str) -> list[str]:
        return sorted({u for p, urls in self._slices.values() if p == pool for u in urls})


class KubernetesDiscovery:
    """Watch EndpointSlices in one namespace and keep the gateway's pools current."""

    def __init__(self, config: KubeConfig, client: Any = None) -> None:
        self._config = config
        self._client = client
        self._labels: dict[str, Any] = dict(parse_selector(config.label_selector))

    async def run(self, registry: EndpointRegistry) -> None:
        from lightkube import AsyncClient
        from lightkube.resources.discovery_v1 import EndpointSlice

        client = self._client or AsyncClient()
        book = SliceBook(self._config.model_label, self._config.port_name)
        backoff = 1.0
        while True:
            try:
                async for event, es in client.watch(EndpointSlice, namespace=self._config.namespace,
                                                    labels=self._labels):
                    backoff = 1.0
                    changed = book.apply(event, es)
                    if changed is not None:
                        registry.set_endpoints(*changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server went away: log, back off, watch again
                log.warning("EndpointSlice watch failed (%s); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)


