"""Scorers: each maps the candidate endpoints to scores in [0, 1] (1 best)."""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.plugins import Scorer, SessionTable
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.gateway.scheduling.request import RoutingRequest


def _inverse_min_max(values: Sequence[float]) -> list[float]:
    """Least value scores 1, largest 0, linear between; all equal: all 1."""
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [1.0] * len(values)
    span = hi - lo
    return [(hi - v) / span for v in values]


def outstanding_requests(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
    """Fewer requests in flight through this gateway scores higher."""
    return _inverse_min_max([e.outstanding for e in eps])


def queue_depth(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
    """Shorter engine wait queue (scraped ``vllm:num_requests_waiting``) scores higher."""
    return _inverse_min_max([e.waiting for e in eps])


def kv_cache_usage(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
    """Free KV cache: ``1 - vllm:kv_cache_usage_perc``."""
    return [min(1.0, max(0.0, 1.0 - e.kv_usage)) for e in eps]


def lora_affinity(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
    """1 where the requested adapter is already active (no load), else 0; neutral without one."""
    if req.lora is None:
        return [0.0] * len(eps)
    return [1.0 if req.lora in e.loras else 0.0 for e in eps]


def make_prefix_scorer(index: PrefixIndex, *, precise: bool = False) -> Scorer:
    """Share of the prompt's leading blocks the endpoint holds: believed (approximate index of
    what the gateway sent where) or known (``precise``: the engines' own KV events)."""

    def prefix_affinity(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        hashes = req.token_hashes if precise else req.prefix_hashes
        n = len(hashes)
        if n == 0:
            return [0.0] * len(eps)
        matched = index.matched_blocks(hashes, [e.url for e in eps])
        return [matched[e.url] / n for e in eps]

    return prefix_affinity


def make_session_scorer(sessions: SessionTable) -> Scorer:
    """1 for the endpoint that served this session last, 0 for the others."""

    def session_affinity(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        if req.session is None:
            return [0.0] * len(eps)
        url = sessions.get(req.session)
        return [1.0 if e.url == url else 0.0 for e in eps]

    return session_affinity
