"""The latency model: an endpoint's predicted time to first token (TTFT) for one request.

For endpoint *e* and a request whose prompt has ``u_e`` tokens not cached at *e*::

    T_e = b + o + p * (u_e + A_e) + c * n_e + s * W_e          (seconds)

    A_e = prefill tokens ahead of it at e: the uncached tokens of this gateway's requests
          sent to e whose first token it has not seen yet (streamed; others until their
          predicted first token), plus, for the engine's
          waiting requests this gateway did not send, the mean uncached tokens each
    n_e = requests at e: engine running + waiting as of the last scrape, plus this gateway's
          requests sent there since less those finished since, never below this gateway's own
          in-flight count there (:func:`corrected_load`)
    W_e = max(waiting_e * D_e / max(1, running_e), KV_e)   the engine's queue: of the n_e
          requests, those beyond the most an engine of the pool was seen running at once, and
          this request itself once the batch is as full as engines of the pool were seen with a
          queue that lasted two scrapes (:func:`queue_wait`), drained at running_e / D_e
          requests a second; or, where longer, the wait for enough of those running to finish
          that the engine has KV-cache blocks for this request's uncached tokens and those
          ahead of it (:func:`kv_wait`)
    D_e = seconds a request runs after its first token (decode), an average of the
          gateway's own measurements (end - first token) and the engine's
          ``vllm:request_decode_time_seconds`` histogram

``(b, p, c, s)``, the fixed cost (HTTP, tokenization, one step), the prefill seconds per
token, the cost of each request sharing the engine's batch (every step of a bigger batch takes
longer) and the weight of the queue wait, are learned per pool by recursive least squares
over the observed TTFT of every request the pool served (so every decision trains the queue
term, whichever endpoint it picked), with ``u`` the tokens the engine reported uncached
(``usage.prompt_tokens - prompt_tokens_details.cached_tokens``) where it reports them;
``o``, the pool's offset, moves by 5% of each request's prediction error as it was made.

Everything here is pure; :mod:`kubellm.gateway.scheduling.learner` keeps the state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kubellm.gateway.endpoint import Endpoint

# Priors, before an endpoint has served anything: 50 ms fixed, 0.1 ms a prefill token (a 7-8B
# model on one modern GPU is ~0.03-0.1 ms), 2 ms a request in the batch (so that, caches
# equal, the less loaded endpoint wins from the first request), the queue wait at face value
# (a prior of 0 was tried: then the queue of an engine holding hot prefixes went unseen, its
# measured TTFT was 5-15x the prediction, and a third engine stayed idle). The variances let
# the first tens of requests move them.
PRIOR = (0.05, 0.1, 0.01, 1.0)  # b (s), p (s per 1,000 tokens), c (s per request), s (1)
PRIOR_VARIANCE = (0.05, 0.05, 0.01, 1.0)
# p and c stay positive (a longer prompt or a bigger batch is never faster), s non-negative; b,
# the same for every endpoint of a pool, changes no ranking and is left free: clipped at 0 it
# biased every prediction upwards whenever the batch term had taken up the fixed cost
MIN_COEFFICIENTS = (-math.inf, 1e-6, 1e-4, 0.0)
N = len(PRIOR)
FORGET = 0.995  # recursive least squares forgetting factor: about the last 200 requests count
TOKENS_SCALE = 1000.0  # the prefill feature is in thousands of tokens (a well-scaled regression)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """What the engine says of its load, once checked; ``fallback`` names why it was not used."""

    running: float
    waiting: float
    fallback: str | None  # None, "unscraped", "not_finite", "negative"


def engine_load(ep: Endpoint, batch_cap: float = 0.0) -> EngineLoad:
    """The endpoint's gauges if they make sense, corrected for what this gateway sent and saw
    finish since they were scraped (:func:`corrected_load`, *batch_cap* the most requests an
    engine of the pool was seen running at once, 0 if none yet); else zeros and the reason."""
    if not ep.scraped:
        return EngineLoad(0.0, 0.0, "unscraped")
    values = (ep.running, ep.waiting, ep.kv_usage)
    if not all(math.isfinite(v) for v in values):
        return EngineLoad(0.0, 0.0, "not_finite")
    if any(v < 0 for v in values):
        return EngineLoad(0.0, 0.0, "negative")
    running, waiting = corrected_load(ep.running, ep.waiting, ep.outstanding, ep.outstanding_at_scrape, batch_cap)
    return EngineLoad(running, waiting, None)


def corrected_load(running: float, waiting: float, outstanding: int,
                   outstanding_at_scrape: int | None, batch_cap: float = 0.0) -> tuple[float, float]:
    """The engine's (running, waiting) now, from its gauges as of the last scrape.

    Between scrapes every decision would see the same numbers and pile requests onto the engine
    that looked emptiest; so the total is the scraped one plus this gateway's in-flight change
    since (``outstanding - outstanding_at_scrape``: sent less finished), never below this
    gateway's own in-flight count. The batch holds up to *batch_cap*, the most requests an
    engine of the pool was seen running at once (its ``max_num_seqs``, or what the KV cache
    allowed), and the rest wait. The engine's own split is not used: a request that arrived
    between two engine steps shows as waiting for a moment (one running and one waiting made
    an idle engine look half a decode away), and an engine scraped with a full batch and no
    queue would take every request sent since into its batch. Before any batch size is known
    (*batch_cap* 0), an engine with a queue at the scrape takes the change into its queue, one
    without into its batch."""
    delta = 0 if outstanding_at_scrape is None else outstanding - outstanding_at_scrape
    total = max(float(outstanding), running + waiting + delta)
    limit = max(running, batch_cap) if batch_cap > 0 else (running if waiting > 0 else math.inf)
    batch = min(total, limit)
    return batch, total - batch


@dataclass(frozen=True, slots=True)
class Features:
    """The regression's inputs for one (request, endpoint); ``x = (1, prefill/1000, n, W)``."""

    uncached_tokens: float  # u_e
    ahead_tokens: float  # A_e
    requests: float  # n_e
    queue_wait_s: float  # W_e

    def vector(self) -> tuple[float, float, float, float]:
        return (1.0, (self.uncached_tokens + self.ahead_tokens) / TOKENS_SCALE, self.requests, self.queue_wait_s)


def queue_wait(waiting: float, running: float, decode_s: float, full_batch: float = 0.0) -> float:
    """W = waiting * D / max(1, running): the queue ahead, drained at running / D a second.
    With the engines' full batch known (*full_batch* > 0) and reached, this request waits too,
    for one more to finish: ``(waiting + 1) * D / running`` (else an engine with a full batch
    and nobody waiting looked as quick as one with a free slot, and took the request)."""
    if full_batch > 0 and running >= full_batch:
        waiting += 1
    return max(0.0, waiting) * decode_s / max(1.0, running)


def kv_wait(need_tokens: float, kv_usage: float, kv_blocks: float, block_size: float,
            held_by: float, running: float, decode_s: float) -> float:
    """Seconds until the engine has KV-cache blocks for *need_tokens* new tokens (this request's
    uncached prompt and the prefills queued ahead of it), 0 when they fit.

    The engine admits a request only when blocks for its prompt are free: with long prompts
    and a small cache it runs fewer requests than its batch allows, and a request sent there
    waits although the batch has room (traced on the chats shape at 80% load, 300 blocks an
    engine: two or three running, TTFT 450-800 ms against ~40 predicted). The free blocks are
    ``(1 - kv_usage) * kv_blocks``; each of the *held_by* requests the engine ran at the scrape
    holds ``kv_usage * kv_blocks / held_by`` blocks on average, and the ``k`` of them needed to
    free the deficit finish at ``running / D`` a second: ``W_kv = k * D / running``, ``k`` at
    most *held_by* (by then every request the engine ran at the scrape has finished).
    Unknown cache sizes (NaN, 0) or a nonsense usage mean no wait."""
    values = (need_tokens, kv_usage, kv_blocks, block_size, held_by, decode_s)
    if not all(math.isfinite(v) for v in values) or kv_blocks <= 0 or block_size <= 0 or not 0 <= kv_usage <= 1:
        return 0.0
    deficit = need_tokens / block_size - (1.0 - kv_usage) * kv_blocks
    if deficit <= 0 or held_by < 1 or kv_usage <= 0:
        return 0.0
    held = kv_usage * kv_blocks / held_by
    finished = min(held_by, math.ceil(deficit / held))
    return finished * max(0.0, decode_s) / max(1.0, running)


def uncached_tokens(prompt_tokens: float, matched_blocks: int, blocks: int) -> float:
    """The prompt's tokens past the endpoint's cached leading blocks (a share of the whole)."""
    if blocks <= 0:
        return prompt_tokens
    return prompt_tokens * (1.0 - min(matched_blocks, blocks) / blocks)


class Fit:
    """Recursive least squares for ``ttft = theta . x`` with forgetting; never raises.

    A non-finite or negative observation is ignored (``update`` returns False)."""

    __slots__ = ("theta", "cov", "samples")

    def __init__(self) -> None:
        self.theta = list(PRIOR)
        self.cov = [[PRIOR_VARIANCE[i] if i == j else 0.0 for j in range(N)] for i in range(N)]
        self.samples = 0

    def coefficients(self) -> tuple[float, ...]:
        """``(b, p, c, s)``, each at least its :data:`MIN_COEFFICIENTS` bound."""
        return tuple(max(lo, t) for lo, t in zip(MIN_COEFFICIENTS, self.theta))

    def predict(self, x: Sequence[float]) -> float:
        """``theta . x`` under the bounded coefficients, never below 0."""
        return max(0.0, sum(c * v for c, v in zip(self.coefficients(), x)))

    def update(self, x: Sequence[float], y: float) -> bool:
        if not (math.isfinite(y) and y >= 0 and all(math.isfinite(v) for v in x)):
            return False
        cov = self.cov
        px = [sum(cov[i][j] * x[j] for j in range(N)) for i in range(N)]
        denom = FORGET + sum(x[i] * px[i] for i in range(N))
        if denom <= 1e-12:
            return False
        gain = [v / denom for v in px]
        err = y - sum(t * v for t, v in zip(self.theta, x))
        self.theta = [t + g * err for t, g in zip(self.theta, gain)]
        new = [[cov[i][j] - gain[i] * px[j] for j in range(N)] for i in range(N)]
        # forget only while no direction's variance exceeds its prior tenfold: a feature that
        # stays 0 for a long time (no queue wait at low load) must not wind its gain up
        if all(new[i][i] < 10 * PRIOR_VARIANCE[i] for i in range(N)):
            new = [[v / FORGET for v in row] for row in new]
        self.cov = new
        self.samples += 1
        return True


def predict_ttft(fit: Fit, f: Features) -> float:
    """T_e for the features *f* under the endpoint's fitted coefficients."""
    return fit.predict(f.vector())
