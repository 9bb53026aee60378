"""One routing profile run end to end: filters, weighted scorers, picker, then bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubellm.gateway.config import RoutingProfile
from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.errors import NoEndpointError
from kubellm.gateway.scheduling.plugins import RoutingState, Scorer
from kubellm.gateway.scheduling.registry import LATENCY_SCORERS, build_filter, build_picker, build_scorer
from kubellm.gateway.scheduling.request import RoutingRequest


@dataclass(frozen=True, slots=True)
class Decision:
    endpoint: Endpoint
    reason: str  # the scorer that most favoured the winner, or the picker's name
    prefix_blocks_hit: int  # estimated from the approximate prefix index


class Scheduler:
    """Runs one :class:`RoutingProfile` over a pool's endpoints."""

    def __init__(self, profile: RoutingProfile, state: RoutingState) -> None:
        self._state = state
        self._filters = [build_filter(f, state) for f in profile.filters]
        self._scorers: list[tuple[str, float, Scorer]] = [
            (s.type, s.weight, build_scorer(s, state)) for s in profile.scorers if s.weight > 0]
        self._picker = build_picker(profile.picker, state)
        self._picker_name = profile.picker.type
        self._predicts = any(name in LATENCY_SCORERS for name, _, _ in self._scorers)

    def pick(self, req: RoutingRequest, eps: Sequence[Endpoint],
             exclude: frozenset[str] = frozenset()) -> Decision:
        """The endpoint for *req*; ``NoEndpointError`` when filters leave none."""
        candidates = [e for e in eps if e.url not in exclude]
        for f in self._filters:
            candidates = f(req, candidates)
        if not candidates:
            raise NoEndpointError(f"no ready endpoint for model {req.model!r}")
        if len(candidates) == 1:  # nothing to choose between: skip the scorers
            return Decision(candidates[0], "only-candidate", self._record(req, candidates[0]))
        totals, reason = self._score(req, candidates)
        chosen = self._picker(req, candidates, totals)
        return Decision(chosen, reason.get(chosen.url, self._picker_name), self._record(req, chosen))

    def _score(self, req: RoutingRequest, eps: list[Endpoint]) -> tuple[list[float], dict[str, str]]:
        totals = [0.0] * len(eps)
        best: dict[str, tuple[float, str]] = {}
        for name, weight, scorer in self._scorers:
            scores = scorer(req, eps)
            mean = sum(scores) / len(scores)
            for i, s in enumerate(scores):
                totals[i] += weight * s
                edge = weight * (s - mean)
                url = eps[i].url
                if edge > 1e-9 and edge > best.get(url, (0.0, ""))[0]:
                    best[url] = (edge, name)
        return totals, {u: n for u, (_, n) in best.items()}

    def _record(self, req: RoutingRequest, chosen: Endpoint) -> int:
        if self._predicts:
            self._state.latency.start(req, chosen.url)
        hit = 0
        if req.prefix_hashes:
            hit = self._state.prefix.matched_blocks(req.prefix_hashes, [chosen.url])[chosen.url]
            self._state.prefix.record(chosen.url, req.prefix_hashes)
        if req.token_hashes:
            # The engine will store these blocks and say so once its prefill ends; until then a
            # request with the same prefix would not see them. Recorded now, the engine's own
            # events confirm them or, by BlockRemoved, take them back.
            self._state.precise_prefix.record(chosen.url, req.token_hashes)
        if req.session is not None:
            self._state.sessions.record(req.session, chosen.url)
        return hit
