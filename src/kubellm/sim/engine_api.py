"""The contract between the HTTP layer and an engine (cost model or fixed latency)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kubellm.sim.metrics import EngineStats
from kubellm.sim.progress import Progress


@dataclass(slots=True)
class GenRequest:
    """A validated generation request, as the engine sees it."""

    request_id: str
    prompt_ids: list[int]
    num_output: int  # tokens the request will produce before it finishes
    output_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    lora: str | None = None
    stream: bool = False
    kv_transfer_in: dict[str, Any] | None = None  # decode side of P/D disaggregation
    remote_decode: bool = False  # prefill side: keep blocks, return kv_transfer_params


class Engine(Protocol):
    """What an engine offers the HTTP layer."""

    stats: EngineStats

    def submit(self, req: GenRequest, arrival: float | None = None) -> Progress:
        """Queue *req*; *arrival* is when the request reached the server (loop time), default now."""
        ...

    def abort(self, progress: Progress) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
