"""The proxy: one OpenAI request from admission to the last byte, with retries.

Flow: pick an endpoint (bounded queue) -> send -> on failure before the first byte,
mark the endpoint's breaker and try another -> stream or return the answer -> account.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kubellm.gateway.config import GatewayConfig
from kubellm.gateway.errors import NoEndpointError, relayed_error_body
from kubellm.gateway.payload import ParsedRequest
from kubellm.gateway.pool import Pool
from kubellm.gateway.relay import Accounting, StreamRelay
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.server import answer, start_stream
from kubellm.gateway.telemetry import GatewayMetrics
from kubellm.gateway.upstream import Opened, Retryable, Upstream, usage_of

PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}


@dataclass(slots=True)
class Outgoing:
    """What is sent upstream: the (possibly rewritten) body and forwarded headers."""

    path: str
    body: bytes
    headers: dict[str, str]
    injected_usage: bool


def build_outgoing(parsed: ParsedRequest, upstream_model: str, headers: dict[str, str],
                   extra: dict[str, Any] | None = None, raw: bytes | None = None) -> Outgoing:
    """Rewrite the body only where needed: model name, usage in streams, P/D parameters."""
    body = parsed.body
    injected = False
    changes: dict[str, Any] = dict(extra or {})
    if upstream_model != parsed.model:
        changes["model"] = upstream_model
    if parsed.stream:
        opts = body.get("stream_options")
        if not (isinstance(opts, dict) and opts.get("include_usage")):
            changes["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
            injected = True
    if not changes and raw is not None:
        return Outgoing(PATHS[parsed.kind], raw, headers, injected)  # unchanged: forward the client's bytes
    return Outgoing(PATHS[parsed.kind], orjson.dumps({**body, **changes}), headers, injected)


class Proxy:
    def __init__(self, config: GatewayConfig, upstream: Upstream, metrics: GatewayMetrics) -> None:
        self._config = config
        self._upstream = upstream
        self._metrics = metrics

    async def forward(self, request: web.Request, parsed: ParsedRequest, out: Outgoing, pool: Pool,
                      rreq: RoutingRequest, acct: Accounting) -> web.StreamResponse:
        """Try endpoints until one answers before its first byte; then respond."""
        result = await self.exchange(out, pool, rreq, acct, stream=parsed.stream)
        if isinstance(result, Opened):
            return await self._relay(request, result, out, acct)
        status, body, ctype = result
        acct.status = status
        if status >= 400:
            return await answer(request, status, relayed_error_body(status, body), "application/json")
        sent = await answer(request, status, body, ctype or "application/json")
        if status == 200:  # after the answer went out: the client does not wait for accounting
            acct.take_usage(usage_of(body))
        return sent

    async def exchange(self, out: Outgoing, pool: Pool, rreq: RoutingRequest, acct: Accounting,
                       *, stream: bool) -> Opened | tuple[int, bytes, str]:
        """The retry loop: each attempt on a distinct endpoint, up to ``max_attempts``."""
        tried: frozenset[str] = frozenset()
        last: Retryable | None = None
        for attempt in range(self._config.resilience.max_attempts):
            try:
                decision = pool.acquire_now(rreq, tried) or await pool.acquire(rreq, tried)
            except NoEndpointError:
                if last is None:
                    raise
                break
            ep = decision.endpoint
            if attempt == 0:
                self._record_decision(acct.model, rreq, decision.reason, decision.prefix_blocks_hit)
            else:
                self._metrics.retries.labels(acct.model).inc()
            acct.endpoint = ep.url
            tried |= {ep.url}
            ep.breaker.on_attempt()
            try:
                if stream:
                    result: Opened | tuple[int, bytes, str] = await self._upstream.open_stream(
                        ep.url + out.path, out.body, out.headers)
                else:
                    result = await self._upstream.call(ep.url + out.path, out.body, out.headers)
            except Retryable as failure:
                ep.breaker.on_failure()
                pool.release(ep)
                last = failure
                continue
            except BaseException:
                ep.breaker.on_abandoned()  # else a half-open breaker waits for this trial for ever
                pool.release(ep)
                raise
            ep.breaker.on_success()
            if isinstance(result, Opened):
                result.release = lambda ep=ep: pool.release(ep)  # type: ignore[misc]
            else:
                pool.release(ep)
            return result
        assert last is not None
        if last.response is not None:
            return last.response
        raise last.error

    async def _relay(self, request: web.Request, opened: Opened, out: Outgoing,
                     acct: Accounting) -> web.StreamResponse:
        try:
            acct.status = 200
            client = await start_stream(request, 200, {"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache"})
            relay = StreamRelay(acct, drop_usage_event=out.injected_usage)
            deadline = asyncio.get_running_loop().time() + self._config.timeouts.total_s
            try:
                await relay.run(opened.response, client, opened.first, deadline)
            except ConnectionResetError:
                acct.status = 499  # the client went away; the upstream connection is closed
            return client
        finally:
            if not acct.done:
                opened.response.close()
            opened.release()

    def _record_decision(self, model: str, rreq: RoutingRequest, reason: str, hit: int) -> None:
        self._metrics.decisions.labels(model, reason).inc()
        if rreq.prefix_hashes:
            self._metrics.prefix_query_blocks.labels(model).inc(len(rreq.prefix_hashes))
            self._metrics.prefix_hit_blocks.labels(model).inc(hit)

