"""Model names -> where requests go: names, aliases, LoRA adapters and canary splits."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from kubellm.gateway.config import GatewayConfig, ModelConfig
from kubellm.gateway.errors import ModelNotFoundError


@dataclass(frozen=True, slots=True)
class Target:
    model: ModelConfig  # whose pool serves the request
    upstream_model: str  # the `model` field the engine is sent
    lora: str | None


def pool_names(model: ModelConfig) -> tuple[str, ...]:
    """The pools serving *model*: its name, or ``<name>/prefill`` and ``<name>/decode``."""
    return (model.name,) if model.disaggregation is None else (f"{model.name}/prefill", f"{model.name}/decode")


def _target(model: ModelConfig, lora: str | None) -> Target:
    return Target(model, lora, lora) if lora is not None else Target(model, model.upstream_name, None)


class CanarySplitter:
    """Smooth weighted round-robin over a model and its canaries (nginx's algorithm): over any
    run of requests each side's share is within one request of its weight, so a 20 % canary
    gets 20 % of 200 requests, not 20 % give or take a random draw's 3 points. Each gateway
    replica splits its own requests this way, so their sum splits as exactly. The rotation
    starts at a random place, so replicas do not all send their first request to one side."""

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        canaries = [(split.model, split.weight) for split in model.canary]
        self._sides: list[tuple[str | None, float]] = [(None, 100.0 - sum(w for _, w in canaries)), *canaries]
        self._credit = [rng.uniform(0.0, w) for _, w in self._sides]

    def next(self) -> str | None:
        """The canary model to send this request to, or None for the model itself."""
        for i, (_, weight) in enumerate(self._sides):
            self._credit[i] += weight
        best = max(range(len(self._sides)), key=self._credit.__getitem__)
        self._credit[best] -= 100.0
        return self._sides[best][0]


class ModelTable:
    """*routable*: whether a pool (by name: :func:`pool_names`) has an endpoint to send to now.
    A canary without one in each of its pools gets no request (it goes to the model itself):
    its engines went away before the config that drops it reached this gateway (a promotion
    retiring the canary, a canary that stopped being ready), and a request routed there would fail."""

    def __init__(self, config: GatewayConfig, rng: random.Random,
                 routable: Callable[[str], bool] = lambda pool: True) -> None:
        self._routable = routable
        self._by_name = {m.name: m for m in config.models}
        self._names: dict[str, tuple[ModelConfig, str | None]] = {}
        for m in config.models:
            self._names[m.name] = (m, None)
            for alias in m.aliases:
                self._names[alias] = (m, None)
            for adapter in m.lora_adapters:
                self._names[adapter] = (m, adapter)
        self._splits = {m.name: CanarySplitter(m, rng) for m in config.models if m.canary}
        # each name's target made once (a frozen dataclass costs a setattr per field to build)
        self._targets = {name: _target(m, lora) for name, (m, lora) in self._names.items()}

    def resolve(self, name: str) -> Target:
        target = self._targets.get(name)
        if target is None:
            raise ModelNotFoundError(f"the model {name!r} does not exist")
        model = target.model
        if target.lora is None and model.canary:
            chosen = self._splits[model.name].next()
            if chosen is not None and all(self._routable(pool) for pool in pool_names(self._by_name[chosen])):
                return self._targets[chosen]
        return target

    def listing(self) -> list[dict[str, object]]:
        """``GET /v1/models`` data: every name a client may send."""
        out: list[dict[str, object]] = []
        for name, (model, lora) in self._names.items():
            entry: dict[str, object] = {"id": name, "object": "model", "created": 0, "owned_by": "kubellm",
                                        "root": model.name}
            if lora is not None:
                entry["parent"] = model.name
            out.append(entry)
        return out
