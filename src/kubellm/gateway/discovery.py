"""Endpoint discovery sources; each pushes URL lists into the gateway's registry.

- :class:`StaticDiscovery`: the endpoints written in the config (applied by the gateway).
- :class:`LocalDiscovery`: the local runner calls ``set_endpoints(model, urls)`` as it
  starts and stops engine processes.
- :mod:`kubellm.gateway.k8s`: EndpointSlices watched by label selector.

Pool names: a model's name, or ``<model>/prefill`` and ``<model>/decode`` for the
two pools of a disaggregated model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class EndpointRegistry(Protocol):
    def set_endpoints(self, pool: str, urls: Sequence[str]) -> None: ...


class DiscoverySource(Protocol):
    async def run(self, registry: EndpointRegistry) -> None:
        """Push the current endpoints, then keep them current until cancelled (or return)."""


class LocalDiscovery:
    """An in-process registry for local mode: ``set_endpoints`` works before and after start."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, ...]] = {}
        self._registry: EndpointRegistry | None = None

    def set_endpoints(self, model: str, urls: Sequence[str]) -> None:
        self._known[model] = tuple(urls)
        if self._registry is not None:
            self._registry.set_endpoints(model, urls)

    async def run(self, registry: EndpointRegistry) -> None:
        self._registry = registry
        for model, urls in self._known.items():
            registry.set_endpoints(model, urls)
