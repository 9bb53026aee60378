"""What the latency-predicting scorers know and learn: per endpoint fits, requests in flight,
and how good the predictions were.

The scorers call :meth:`LatencyState.predict` (the formula of
:mod:`kubellm.gateway.scheduling.latency`) over the snapshot of endpoints; the scheduler
calls :meth:`LatencyState.start` for the endpoint it chose; the gateway calls
:meth:`LatencyState.finish` when the request ends, with the TTFT and usage it measured.
Nothing here does I/O or raises on bad numbers: engine gauges that are missing or nonsense,
and an engine histogram counter that goes backwards, are counted in :attr:`fallbacks` (the
``kubellm_routing_engine_metrics_fallback_total`` metric) and the gateway's own counts stand in.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.latency import (Features, Fit, engine_load, kv_wait, predict_ttft, queue_wait,
                                                uncached_tokens)
from kubellm.gateway.scheduling.prefix import PrefixIndex
from kubellm.gateway.scheduling.request import RoutingRequest

DEFAULT_DECODE_S = 0.5  # a request's decode time before any is measured
DEFAULT_TOKENS_PER_CHAR = 0.25  # ~4 characters a token (English, BPE), until usage says
EWMA = 0.1  # weight of a new measurement in the running averages
ERROR_WINDOW = 2000  # (predicted, measured) pairs kept for the error figures
OFFSET_EWMA = 0.05  # share of a request's prediction error added to its pool's offset o
SETTLE = 30  # requests a pool's fit learns from before its prediction errors train the offset
# the engine's cached tokens, in the index's blocks, within this many of all the blocks: all
# held (the engine never counts the last partial block, the chat template adds tokens)
WHOLE_SLACK_BLOCKS, WHOLE_SLACK_SHARE = 2, 0.05


@dataclass(slots=True)
class Ticket:
    """A routed request's prediction, kept until it ends."""

    endpoint: str
    features: Features
    predicted: float
    sent: float
    prompt_chars: int
    ahead: bool = False  # counted in its endpoint's _Ahead totals (before its predicted first token)
    ages: tuple[int, ...] = ()  # its leading blocks' ages in the approximate index there, when routed
    kinds: tuple[int, ...] = ()  # and whether each was fresh or reused there (prefix.FRESH, .REUSED)
    contended: bool = False  # another of this gateway's requests there was before its first token
    streamed: bool = False  # the gateway will see its first token (LatencyState.first_token)


@dataclass(slots=True)
class _Ahead:
    """One endpoint's tickets still before their predicted first token, as running totals:
    each decision reads them after expiring what passed its deadline (a heap ordered by
    deadline), instead of walking every request in flight."""

    count: int = 0
    tokens: float = 0.0
    deadlines: list[tuple[float, int, Ticket]] = field(default_factory=list)  # (sent + predicted, seq, ticket)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def add(self, ticket: Ticket) -> None:
        """Count *ticket* until its first token: seen by the gateway when streamed (then
        :meth:`remove` ends it), else assumed at its predicted time."""
        if not (ticket.streamed or ticket.predicted > 0):  # 0, negative or NaN: never before its first token
            return
        ticket.ahead = True
        self.count += 1
        self.tokens += ticket.features.uncached_tokens
        if not ticket.streamed:
            heapq.heappush(self.deadlines, (ticket.sent + ticket.predicted, next(self._seq), ticket))

    def remove(self, ticket: Ticket) -> None:
        """*ticket* ended: out of the totals (its heap entry is skipped when popped; the heap is
        rebuilt once such entries outnumber the live ones)."""
        self._uncount(ticket)
        if len(self.deadlines) > 2 * self.count + 64:
            self.deadlines = [entry for entry in self.deadlines if entry[2].ahead]
            heapq.heapify(self.deadlines)

    def _uncount(self, ticket: Ticket) -> None:
        if ticket.ahead:
            ticket.ahead = False
            self.count -= 1
            self.tokens = self.tokens - ticket.features.uncached_tokens if self.count else 0.0

    def at(self, now: float) -> tuple[int, float]:
        """The totals at *now*: tickets whose ``now - sent < predicted``."""
        heap = self.deadlines
        while heap and not now - heap[0][2].sent < heap[0][2].predicted:
            self._uncount(heapq.heappop(heap)[2])
        return self.count, self.tokens


@dataclass(slots=True)
class PoolModel:
    """One pool's TTFT model: the fit every endpoint's requests train, and an offset ``o``
    moved by each request's prediction error as made at routing time (so it takes up what the
    fit cannot: cached tokens the prefix index mispredicts, the bias of coefficients kept
    non-negative). One offset for the pool, not one per endpoint: per-endpoint offsets learned
    from a few noisy requests each differ by more than the tie band and make one endpoint look
    faster than the others for as long as they last, which herds requests onto it."""

    fit: Fit = field(default_factory=Fit)
    offset_s: float = 0.0
    batch_cap: float = 0.0  # most requests an engine of the pool was seen running at once
    # most seen running under a queue that lasted two scrapes: a full batch, while no engine of the
    # pool was seen running more (a queue below that was for KV blocks or a step's token budget:
    # traced on the chats shape, a queue at 4 running made every engine running 4 look full)
    full_batch: float = 0.0

    def predict(self, f: Features) -> float:
        """T_e, never negative."""
        return max(0.0, predict_ttft(self.fit, f) + self.offset_s)

    def learn(self, x: Sequence[float], ttft_s: float, predicted_s: float) -> bool:
        """Train the fit on the measured *ttft_s* against the features *x* as measured, and the
        offset on the error of *predicted_s*, the prediction made when the request was routed."""
        if not self.fit.update(x, ttft_s):
            return False
        if self.fit.samples > SETTLE and math.isfinite(predicted_s):  # the prior's early errors are no offset
            self.offset_s += OFFSET_EWMA * (ttft_s - predicted_s)
        return True


@dataclass(slots=True)
class EndpointLatency:
    pool: PoolModel = field(default_factory=PoolModel)  # shared by the pool's endpoints
    pool_name: str = ""  # the pool *pool* is kept under in :attr:`LatencyState.pools`
    decode_s: float = DEFAULT_DECODE_S  # D_e
    tpot_s: float = 0.0  # seconds per output token after the first (0: not measured)
    engine_decode: tuple[float, float] | None = None  # last (sum, count) of the engine's histogram

    @property
    def fit(self) -> Fit:
        return self.pool.fit


def _learn_batch_cap(ep: Endpoint, pool: PoolModel) -> None:
    """The most requests an engine of the pool was seen running at once (the engines of a pool
    are alike; one cap for all, so that the same load never looks queued on one and not on another)."""
    if not (ep.scraped and math.isfinite(ep.running)):
        return
    pool.batch_cap = max(pool.batch_cap, ep.running)
    if ep.queued_scrapes >= 2:  # a queue that lasted: the batch is full
        pool.full_batch = max(pool.full_batch, ep.running)


def _ewma(old: float, new: float) -> float:
    return old + EWMA * (new - old)


@dataclass(frozen=True, slots=True)
class Prediction:
    endpoint: str
    features: Features
    ttft_s: float
    tpot_s: float


class LatencyState:
    """The learner: one per gateway (shared by every profile that predicts latency)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, approximate: PrefixIndex | None = None) -> None:
        self._clock = clock
        # the gateway's own prefix index, told how old a block may be and still be cached
        self.approximate = approximate
        self.pools: dict[str, PoolModel] = {}
        self.endpoints: dict[str, EndpointLatency] = {}
        self._tickets: dict[int, Ticket] = {}
        self._by_endpoint: dict[str, dict[int, Ticket]] = {}
        self._ahead_of: dict[str, _Ahead] = {}
        self._last: tuple[int, dict[str, Prediction]] = (0, {})
        self.tokens_per_char = DEFAULT_TOKENS_PER_CHAR
        self.mean_uncached = 0.0
        self.fallbacks: Counter[tuple[str, str]] = Counter()
        self.errors: deque[tuple[float, float]] = deque(maxlen=ERROR_WINDOW)
        self.observations = 0

    # -- prediction ------------------------------------------------------------------------
    def predict(self, req: RoutingRequest, eps: Sequence[Endpoint], matched: dict[str, int],
                blocks: int) -> list[Prediction]:
        """The predicted TTFT on each endpoint; *matched*: cached leading blocks of *blocks*."""
        tokens = req.prompt_chars * self.tokens_per_char
        now = self._clock()
        out = [self._predict_one(ep, uncached_tokens(tokens, matched.get(ep.url, 0), blocks), now) for ep in eps]
        self._last = (req.serial, {p.endpoint: p for p in out})
        return out

    def _predict_one(self, ep: Endpoint, uncached: float, now: float) -> Prediction:
        st = self._endpoint(ep.url, ep.pool)
        self._read_engine_decode(ep, st)
        _learn_batch_cap(ep, st.pool)
        load = engine_load(ep, st.pool.batch_cap)
        prefilling, ahead = self._ahead(ep.url, now)
        if load.fallback is not None:
            self.fallbacks[(ep.url, load.fallback)] += 1
            requests = float(ep.outstanding)
        else:
            requests = max(load.running + load.waiting, float(ep.outstanding))
            ahead += max(0.0, load.waiting - prefilling) * self.mean_uncached
        full = st.pool.full_batch if load.fallback is None and st.pool.full_batch >= st.pool.batch_cap else 0.0
        wait = queue_wait(load.waiting, load.running, st.decode_s, full)
        if load.fallback is None:
            wait = max(wait, kv_wait(uncached + ahead, ep.kv_usage, ep.kv_blocks, ep.block_size, ep.running,
                                     load.running, st.decode_s))
        f = Features(uncached, ahead, requests, wait)
        return Prediction(ep.url, f, st.pool.predict(f), st.tpot_s)

    def _ahead(self, url: str, now: float) -> tuple[int, float]:
        """This gateway's requests at *url* still before their predicted first token: count, tokens."""
        ahead = self._ahead_of.get(url)
        return (0, 0.0) if ahead is None else ahead.at(now)

    def _read_engine_decode(self, ep: Endpoint, st: EndpointLatency) -> None:
        """Fold the engine's decode-time histogram into D_e; a counter going backwards is reset."""
        total, count = ep.decode_s_sum, ep.decode_count
        if not (math.isfinite(total) and math.isfinite(count)):
            return
        last = st.engine_decode
        st.engine_decode = (total, count)
        if last is None or (total, count) == last:
            return
        if total < last[0] or count < last[1]:
            self.fallbacks[(ep.url, "counter_backwards")] += 1
            return
        if count > last[1]:
            st.decode_s = _ewma(st.decode_s, (total - last[0]) / (count - last[1]))

    def _endpoint(self, url: str, pool: str = "") -> EndpointLatency:
        """*url*'s state, bound to *pool*'s model; an endpoint now listed under another pool (a
        reload moved it) keeps what it measured of its engine and takes the new pool's model."""
        st = self.endpoints.get(url)
        if st is None or st.pool_name != pool:
            model = self.pools.get(pool)
            if model is None:
                model = self.pools[pool] = PoolModel()
            st = self.endpoints[url] = (EndpointLatency(model, pool) if st is None
                                        else replace(st, pool=model, pool_name=pool))
            self._prune_pools()
        return st

    def _prune_pools(self) -> None:
        """Drop the models of pools none of whose endpoints is left (model removed or renamed):
        they would be kept, and exported, for the life of the process."""
        live = {st.pool_name for st in self.endpoints.values()}
        for name in [name for name in self.pools if name not in live]:
            del self.pools[name]

    # -- bookkeeping -----------------------------------------------------------------------
    def start(self, req: RoutingRequest, url: str) -> None:
        """The scheduler sent *req* to *url*: keep the prediction made for it there."""
        key, preds = self._last
        self._last = (0, {})  # used once: a later start() for this request must not reuse it
        pred = preds.get(url) if key == req.serial else None
        if pred is None:
            return
        self._drop(req.serial)
        now = self._clock()
        ticket = Ticket(url, pred.features, pred.ttft_s, now, req.prompt_chars, streamed=req.stream)
        if self.approximate is not None and req.prefix_hashes and not req.token_hashes:
            states = self.approximate.block_states(url, req.prefix_hashes)
            ticket.ages, ticket.kinds = tuple(a for a, _ in states), tuple(k for _, k in states)
            ticket.contended = self._ahead(url, now)[0] > 0
        self._tickets[req.serial] = ticket
        self._by_endpoint.setdefault(url, {})[req.serial] = ticket
        ahead = self._ahead_of.get(url)
        if ahead is None:
            ahead = self._ahead_of[url] = _Ahead()
        ahead.add(ticket)

    def first_token(self, req: RoutingRequest) -> None:
        """The gateway saw *req*'s first token (streamed): it no longer counts as a prefill
        ahead of later requests at its endpoint. Counted until then, however late: by its
        predicted time alone, a request predicted too quick (the fit is noisy under load) left
        the count while still waiting, and the next request was sent behind it."""
        ticket = self._tickets.get(req.serial)
        if ticket is not None and ticket.ahead and ticket.streamed:
            ahead = self._ahead_of.get(ticket.endpoint)
            if ahead is not None:
                ahead.remove(ticket)

    def _drop(self, key: int) -> Ticket | None:
        ticket = self._tickets.pop(key, None)
        if ticket is not None:
            self._by_endpoint.get(ticket.endpoint, {}).pop(key, None)
            ahead = self._ahead_of.get(ticket.endpoint)
            if ahead is not None:
                ahead.remove(ticket)
        return ticket

    def finish(self, req: RoutingRequest, *, ttft_s: float | None, decode_s: float, prompt_tokens: int,
               cached_tokens: int | None, completion_tokens: int) -> None:
        """*req* ended; with a first token seen (*ttft_s*), learn from what was measured."""
        ticket = self._drop(req.serial)
        if ticket is None or ttft_s is None or not math.isfinite(ttft_s) or ttft_s < 0:
            return
        st = self.endpoints.get(ticket.endpoint)
        if st is None:
            return
        uncached = self._learn_tokens(ticket, prompt_tokens, cached_tokens)
        self._learn_horizon(req, ticket, prompt_tokens, cached_tokens)
        x = Features(uncached, ticket.features.ahead_tokens, ticket.features.requests,
                     ticket.features.queue_wait_s).vector()
        if st.pool.learn(x, ttft_s, ticket.predicted):
            self.observations += 1
            self.errors.append((ticket.predicted, ttft_s))
        if math.isfinite(decode_s) and decode_s >= 0 and completion_tokens > 1:
            st.decode_s = _ewma(st.decode_s, decode_s)
            tpot = decode_s / (completion_tokens - 1)
            st.tpot_s = tpot if st.tpot_s == 0.0 else _ewma(st.tpot_s, tpot)

    def _learn_tokens(self, ticket: Ticket, prompt_tokens: int, cached_tokens: int | None) -> float:
        """The request's uncached tokens as the engine reported them (else as predicted), and
        the characters-to-tokens ratio and mean uncached tokens updated."""
        if prompt_tokens <= 0:
            return ticket.features.uncached_tokens
        if ticket.prompt_chars > 0:
            self.tokens_per_char = _ewma(self.tokens_per_char, prompt_tokens / ticket.prompt_chars)
        if cached_tokens is None or not 0 <= cached_tokens <= prompt_tokens:
            return ticket.features.uncached_tokens
        uncached = float(prompt_tokens - cached_tokens)
        self.mean_uncached = _ewma(self.mean_uncached, uncached)
        return uncached

    def _learn_horizon(self, req: RoutingRequest, ticket: Ticket, prompt_tokens: int,
                       cached_tokens: int | None) -> None:
        """Tell the approximate index how many of the request's blocks the engine had cached,
        so that it stops (or starts again) trusting blocks of their age there. Not while another
        of this gateway's requests was before its first token there: the engine may not have
        stored the blocks that request was bringing yet."""
        if (self.approximate is None or not ticket.ages or ticket.contended or cached_tokens is None
                or not 0 <= cached_tokens <= prompt_tokens or prompt_tokens <= 0):
            return
        blocks = len(req.prefix_hashes)
        self.approximate.learn_horizon(ticket.endpoint, ticket.ages,
                                       engine_cached_blocks(blocks, cached_tokens / prompt_tokens, len(ticket.ages)),
                                       ticket.kinds)

    def forget_endpoint(self, url: str) -> None:
        """*url* left (discovery, a reload): its state goes, and its pool's model with the last one."""
        if self.endpoints.pop(url, None) is not None:
            self._prune_pools()
        self._ahead_of.pop(url, None)
        for key in list(self._by_endpoint.pop(url, {})):
            self._tickets.pop(key, None)
        for k in [k for k in self.fallbacks if k[0] == url]:
            del self.fallbacks[k]

    # -- how good the predictions are ------------------------------------------------------
    def error_quantiles(self, q: float = 0.5) -> tuple[float, float]:
        """The *q* quantile of |predicted - measured| TTFT (seconds) and of that over measured,
        over the last :data:`ERROR_WINDOW` requests; NaN before any."""
        if not self.errors:
            return math.nan, math.nan
        absolute = [abs(p - m) for p, m in self.errors]
        relative = [abs(p - m) / m for p, m in self.errors if m > 0]
        return _quantile(absolute, q), _quantile(relative, q) if relative else math.nan


def engine_cached_blocks(blocks: int, cached_share: float, claimed: int | None = None) -> int:
    """The engine's cached share of a prompt in the gateway's *blocks* (character blocks): all
    of them when within a couple of blocks of the whole, and all the *claimed* leading blocks
    (those the index holds there) when within a couple of those. The engine caches whole token
    blocks and never the last partial one, so a prefix it holds entirely shows a block or two
    short in character blocks; read as a miss at the age of those last blocks (often 0: sent by
    the chat's previous turn), it drove the learned horizons down to 0-100 blocks against
    300-block caches (traced on the chats shape, issue 18's fourth pass)."""
    cached = math.floor(blocks * cached_share)
    for whole in (blocks, claimed):
        if whole is not None and cached < whole and cached >= whole - _slack(whole):
            return whole
    return cached


def _slack(blocks: int) -> float:
    return max(WHOLE_SLACK_BLOCKS, WHOLE_SLACK_SHARE * blocks)


def _quantile(values: list[float], q: float) -> float:
    if q == 0.5:
        return float(statistics.median(values))
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
