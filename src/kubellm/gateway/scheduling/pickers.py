"""Pickers: choose exactly one endpoint from the scored candidates."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from collections.abc import Sequence

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.plugins import Picker
from kubellm.gateway.scheduling.request import RoutingRequest


def make_max_score(rng: random.Random) -> Picker:
    """Highest total score; ties broken at random so equal endpoints share load."""

    def max_score(req: RoutingRequest, eps: Sequence[Endpoint], scores: Sequence[float]) -> Endpoint:
        best = max(scores)
        tied = [e for e, s in zip(eps, scores) if s >= best - 1e-9]
        return tied[0] if len(tied) == 1 else rng.choice(tied)

    return max_score


def make_power_of_two(rng: random.Random) -> Picker:
    """Two candidates at random, the better scored (then the less loaded) wins."""

    def power_of_two(req: RoutingRequest, eps: Sequence[Endpoint], scores: Sequence[float]) -> Endpoint:
        if len(eps) == 1:
            return eps[0]
        i, j = rng.sample(range(len(eps)), 2)
        key_i = (scores[i], -eps[i].outstanding)
        key_j = (scores[j], -eps[j].outstanding)
        return eps[i] if key_i >= key_j else eps[j]

    return power_of_two


def make_round_robin() -> Picker:
    """The baseline: each endpoint in turn, scores ignored."""
    counter = itertools.count()

    def round_robin(req: RoutingRequest, eps: Sequence[Endpoint], scores: Sequence[float]) -> Endpoint:
        ordered = sorted(eps, key=lambda e: e.url)
        return ordered[next(counter) % len(ordered)]

    return round_robin


def _ring_point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def make_consistent_hash(rng: random.Random, *, load_factor: float = 1.25, vnodes: int = 64) -> Picker:
    """Consistent hashing with bounded load (Mirrokni et al.): the key's ring successor,
    skipping endpoints above ``load_factor`` times the mean in-flight load."""
    rings: dict[tuple[str, ...], tuple[list[int], list[str]]] = {}

    def ring(urls: tuple[str, ...]) -> tuple[list[int], list[str]]:
        built = rings.get(urls)
        if built is None:
            points = sorted((_ring_point(f"{u}#{v}"), u) for u in urls for v in range(vnodes))
            built = ([p for p, _ in points], [u for _, u in points])
            if len(rings) > 64:
                rings.clear()
            rings[urls] = built
        return built

    def consistent_hash(req: RoutingRequest, eps: Sequence[Endpoint], scores: Sequence[float]) -> Endpoint:
        key = req.hash_key
        if key is None:
            return rng.choice(list(eps))
        by_url = {e.url: e for e in eps}
        points, owners = ring(tuple(sorted(by_url)))
        bound = math.ceil(load_factor * (sum(e.outstanding for e in eps) + 1) / len(eps))
        start = bisect.bisect(points, key % (1 << 64))
        for k in range(len(points)):
            ep = by_url[owners[(start + k) % len(points)]]
            if ep.outstanding < bound:
                return ep
        return min(eps, key=lambda e: e.outstanding)

    return consistent_hash
