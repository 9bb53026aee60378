"""Scorers: each maps the candidate endpoints to scores in [0, 1] (1 best)."""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.learner import LatencyState
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


def make_prefix_scorer(index: PrefixIndex, *, precise: bool = False, miss_blocks: int | None = None) -> Scorer:
    """Share of the prompt's leading blocks the endpoint holds: believed (approximate index of
    what the gateway sent where) or known (``precise``: the engines' own KV events).

    With *miss_blocks*, how little the endpoint lacks of the best holder's prefix instead:
    ``1 - min(1, (best - held) / miss_blocks)``. A share scores a conversation's history (a
    few blocks after a long shared system prompt) as a few hundredths, which any load scorer
    outweighs, so its turns wander to other holders of the system prompt and recompute the
    history there; counted in blocks, lacking *miss_blocks* or more scores as lacking it all."""

    def prefix_affinity(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        hashes = req.token_hashes if precise else req.prefix_hashes
        n = len(hashes)
        if n == 0:
            return [0.0] * len(eps)
        matched = index.matched_blocks(hashes, [e.url for e in eps])
        if miss_blocks is not None:
            return _lacking(matched, eps, miss_blocks)
        return [matched[e.url] / n for e in eps]

    return prefix_affinity


def _lacking(matched: dict[str, int], eps: Sequence[Endpoint], miss_blocks: int) -> list[float]:
    """1 for the endpoints holding the most blocks, falling to 0 at *miss_blocks* fewer; all 0
    when none holds any."""
    best = max(matched.values(), default=0)
    if best == 0:
        return [0.0] * len(eps)
    return [1.0 - min(1.0, (best - matched[e.url]) / miss_blocks) for e in eps]


def make_session_scorer(sessions: SessionTable) -> Scorer:
    """1 for the endpoint that served this session last, 0 for the others."""

    def session_affinity(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        if req.session is None:
            return [0.0] * len(eps)
        url = sessions.get(req.session)
        return [1.0 if e.url == url else 0.0 for e in eps]

    return session_affinity


def _matched(req: RoutingRequest, eps: Sequence[Endpoint], approximate: PrefixIndex,
             precise: PrefixIndex) -> tuple[dict[str, int], int]:
    """Cached leading blocks per endpoint, from the engines' events when the request has
    their block hashes (precise), else from the gateway's own index; and the prompt's blocks."""
    hashes, index = (req.token_hashes, precise) if req.token_hashes else (req.prefix_hashes, approximate)
    if not hashes:
        return {}, 0
    return index.matched_blocks(hashes, [e.url for e in eps]), len(hashes)


LOCALITY = 0.3  # a fuller cache wins unless predicted over 1 / (1 - LOCALITY) = 1.43x slower
BALANCE = 0.05  # among endpoints predicted alike, fewer requests there wins (then chance)


def make_latency_scorer(state: LatencyState, approximate: PrefixIndex, precise: PrefixIndex) -> Scorer:
    """Lowest predicted time to first token (:mod:`~kubellm.gateway.scheduling.latency`):
    ``(min_k T_k / T_e + LOCALITY * cached share_e + BALANCE * fewer_e) / (1 + LOCALITY + BALANCE)``,
    ``min_k T_k / T_e`` being 1 within the tie band of the best, ``fewer_e`` the min-max
    inverse of the requests at *e* (``n_e``). The cached-share term keeps a prefix where it is
    while it is predicted at most 1.43 times as slow as the best: copying a hot prefix to a
    second engine evicts other prefixes there, a cost to later requests that this request's
    prediction does not see. The balance term breaks ties (predictions within noise of each
    other) towards the endpoint with fewer requests, as joining the shortest queue does."""

    def predicted_latency(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        matched, blocks = _matched(req, eps, approximate, precise)
        preds = state.predict(req, eps, matched, blocks)
        shares = [matched.get(e.url, 0) / blocks if blocks else 0.0 for e in eps]
        fewer = _inverse_min_max([p.features.requests for p in preds])
        return [(r + LOCALITY * c + BALANCE * f) / (1 + LOCALITY + BALANCE)
                for r, c, f in zip(_ratio_to_best([p.ttft_s for p in preds]), shares, fewer)]

    return predicted_latency


# predictions within 3% (and 2 ms) of the best are equal: the picker chooses among them at
# random, so endpoints whose estimates differ by noise share the load instead of one taking it all
TIE_SHARE, TIE_S = 0.03, 0.002


def _ratio_to_best(values: Sequence[float]) -> list[float]:
    lo = min(values)
    tie = lo * (1 + TIE_SHARE) + TIE_S
    return [1.0 if v <= tie or v <= 0 else lo / v for v in values]


def make_slo_scorer(state: LatencyState, approximate: PrefixIndex, precise: PrefixIndex, *,
                    ttft_target_s: float, tpot_target_s: float | None = None) -> Scorer:
    """SLO-aware: endpoints predicted to meet the TTFT target (and the TPOT target, given one
    and measured) score in [0.5, 1] by the headroom they keep, ``min((target - T_e) / target)``
    over the targets; the others score below 0.5, the lower predicted TTFT the higher."""

    def slo_headroom(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
        matched, blocks = _matched(req, eps, approximate, precise)
        preds = state.predict(req, eps, matched, blocks)
        fallback = _ratio_to_best([p.ttft_s for p in preds])
        out = []
        for p, below in zip(preds, fallback):
            room = (ttft_target_s - p.ttft_s) / ttft_target_s
            if tpot_target_s is not None and p.tpot_s > 0:
                room = min(room, (tpot_target_s - p.tpot_s) / tpot_target_s)
            out.append(0.5 + 0.5 * min(1.0, room) if room >= 0 else 0.5 * below * 0.999)
        return out

    return slo_headroom
