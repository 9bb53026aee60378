"""The three plugin shapes and the shared routing state some plugins read.

Every plugin is synchronous and pure over (request, endpoints, shared state): the
proxy's I/O never happens inside one. Each type registers a factory under a type name
(see :mod:`kubellm.gateway.scheduling.registry`).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.learner import LatencyState
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.gateway.scheduling.request import RoutingRequest


class Filter(Protocol):
    def __call__(self, req: RoutingRequest, eps: Sequence[Endpoint]) -> list[Endpoint]: ...


class Scorer(Protocol):
    """Scores in [0, 1], one per endpoint, higher is better."""

    def __call__(self, req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]: ...


class Picker(Protocol):
    def __call__(self, req: RoutingRequest, eps: Sequence[Endpoint], scores: Sequence[float]) -> Endpoint: ...


class SessionTable:
    """session key -> endpoint url that served it last (bounded LRU)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._map: OrderedDict[str, str] = OrderedDict()

    def get(self, session: str) -> str | None:
        return self._map.get(session)

    def record(self, session: str, url: str) -> None:
        self._map[session] = url
        self._map.move_to_end(session)
        if len(self._map) > self._capacity:
            self._map.popitem(last=False)


@dataclass
class RoutingState:
    """State shared by the plugins of all profiles (owned by the composition root)."""

    prefix: PrefixIndex = field(default_factory=PrefixIndex)
    precise_prefix: PrefixIndex = field(default_factory=PrefixIndex)
    sessions: SessionTable = field(default_factory=SessionTable)
    rng: random.Random = field(default_factory=random.Random)
    latency: LatencyState = field(default_factory=LatencyState)

    def __post_init__(self) -> None:
        if self.latency.approximate is None:  # the learner corrects the approximate index's horizon
            self.latency.approximate = self.prefix
