"""Model names -> where requests go: names, aliases, LoRA adapters and canary splits."""

from __future__ import annotations

import random
from dataclasses import dataclass

from kubellm.gateway.config import GatewayConfig, ModelConfig
from kubellm.gateway.errors import ModelNotFoundError


@dataclass(frozen=True, slots=True)
class Target:
    model: ModelConfig  # whose pool serves the request
    upstream_model: str  # the `model` field the engine is sent
    lora: str | None


class ModelTable:
    def __init__(self, config: GatewayConfig, rng: random.Random) -> None:
        self._rng = rng
        self._by_name = {m.name: m for m in config.models}
        self._names: dict[str, tuple[ModelConfig, str | None]] = {}
        for m in config.models:
            self._names[m.name] = (m, None)
            for alias in m.aliases:
                self._names[alias] = (m, None)
            for adapter in m.lora_adapters:
                self._names[adapter] = (m, adapter)

    def resolve(self, name: str) -> Target:
        found = self._names.get(name)
        if found is None:
            raise ModelNotFoundError(f"the model {name!r} does not exist")
        model, lora = found
        if lora is not None:
            return Target(model, lora, lora)
        if model.canary:
            draw = self._rng.uniform(0.0, 100.0)
            for split in model.canary:
                if draw < split.weight:
                    canary = self._by_name[split.model]
                    return Target(canary, canary.upstream_name, None)
                draw -= split.weight
        return Target(model, model.upstream_name, None)

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
