"""Run ``kubellm gateway`` with every latency-predicting decision traced to a JSON-lines file.

A development harness, never part of a production gateway: it wraps the learner's and the
latency scorer's functions from outside (the shipped code has no trace hook to leave on) and
then runs the gateway's command line as usual. One line per event, to ``$KUBELLM_TRACE``:

- ``{"ev": "predict", "t", "req", "eps": [{url, running, waiting, out, out_at_scrape,
  u, A, n, W, T}...]}``: the features and predicted TTFT of each candidate;
- ``{"ev": "score", "t", "req", "scores": {url: score}}``: the scorer's output (tie band, locality
  and balance terms included);
- ``{"ev": "start", "t", "req", "url"}``: the endpoint chosen;
- ``{"ev": "finish", "t", "req", "ttft", "prompt", "cached"}``: what was measured;
- ``{"ev": "horizon", "t", "url", "ages", "kinds", "cached_blocks", "before", "after"}``: what
  the approximate index's horizons (fresh, reused) learned from it.

    KUBELLM_TRACE=/tmp/trace.jsonl python bench/trace_gateway.py gateway --config ... --port 0

``bench/gateway_routing.py --trace DIR`` starts its kubellm gateways this way (one worker), one
file per row.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO


def _install(out: TextIO) -> None:
    from kubellm.gateway.endpoint import Endpoint
    from kubellm.gateway.scheduling import learner, prefix, scorers
    from kubellm.gateway.scheduling.request import RoutingRequest

    def write(event: dict[str, Any]) -> None:
        event["t"] = round(time.monotonic(), 4)
        out.write(json.dumps(event) + "\n")

    state_cls = learner.LatencyState
    predict, start, finish = state_cls.predict, state_cls.start, state_cls.finish

    def traced_predict(self: learner.LatencyState, req: RoutingRequest, eps: Sequence[Endpoint],
                       matched: dict[str, int], blocks: int) -> list[learner.Prediction]:
        preds = predict(self, req, eps, matched, blocks)
        write({"ev": "predict", "req": req.serial, "blocks": blocks, "offset": self.pools and next(
            iter(self.pools.values())).offset_s, "eps": [
            {"url": e.url, "running": e.running, "waiting": e.waiting, "out": e.outstanding,
             "out_at_scrape": e.outstanding_at_scrape, "matched": matched.get(e.url, 0),
             "u": p.features.uncached_tokens, "A": p.features.ahead_tokens, "n": p.features.requests,
             "W": p.features.queue_wait_s, "T": p.ttft_s} for e, p in zip(eps, preds)],
            "coef": list(next(iter(self.pools.values())).fit.coefficients()) if self.pools else []})
        return preds

    def traced_start(self: learner.LatencyState, req: RoutingRequest, url: str) -> None:
        write({"ev": "start", "req": req.serial, "url": url})
        start(self, req, url)

    def traced_finish(self: learner.LatencyState, req: RoutingRequest, **kw: Any) -> None:
        write({"ev": "finish", "req": req.serial, "ttft": kw.get("ttft_s"), "prompt": kw.get("prompt_tokens"),
               "cached": kw.get("cached_tokens")})
        finish(self, req, **kw)

    index_cls = prefix.PrefixIndex
    learn_horizon = index_cls.learn_horizon

    def traced_learn_horizon(self: prefix.PrefixIndex, endpoint: str, ages: Sequence[int], cached_blocks: int,
                             kinds: Sequence[int] | None = None) -> None:
        before = [self.horizon(endpoint, k) for k in (prefix.FRESH, prefix.REUSED)]
        learn_horizon(self, endpoint, ages, cached_blocks, kinds)
        write({"ev": "horizon", "url": endpoint, "ages": list(ages), "kinds": list(kinds or ()),
               "cached_blocks": cached_blocks, "before": before,
               "after": [self.horizon(endpoint, k) for k in (prefix.FRESH, prefix.REUSED)]})

    index_cls.learn_horizon = traced_learn_horizon  # type: ignore[method-assign]
    state_cls.predict = traced_predict  # type: ignore[method-assign]
    state_cls.start = traced_start  # type: ignore[method-assign]
    state_cls.finish = traced_finish  # type: ignore[method-assign]

    make = scorers.make_latency_scorer

    def traced_make(*args: Any, **kw: Any) -> Callable[[RoutingRequest, Sequence[Endpoint]], list[float]]:
        scorer = make(*args, **kw)

        def traced(req: RoutingRequest, eps: Sequence[Endpoint]) -> list[float]:
            scores = scorer(req, eps)
            write({"ev": "score", "req": req.serial, "scores": {e.url: s for e, s in zip(eps, scores)}})
            return scores

        return traced

    scorers.make_latency_scorer = traced_make  # type: ignore[assignment]


def main() -> None:
    path = os.environ.get("KUBELLM_TRACE")
    if path:
        _install(open(path, "w", buffering=1))  # noqa: SIM115 (line-buffered, open for the process's life)
    from kubellm.cli.main import main as kubellm_main

    sys.argv = ["kubellm", *sys.argv[1:]]
    kubellm_main()


if __name__ == "__main__":
    main()
