"""The composition root: ``build_gateway(config, discovery=..., activator=...)``.

:class:`Gateway` owns every piece (pools, schedulers, tenants, metrics, the one shared
client session, background probes) and exposes the aiohttp application. Nothing here
is module-level state; two gateways in one process are independent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.clock import Clock, MonotonicClock
from kubellm.gateway.config import GatewayConfig, ModelConfig
from kubellm.gateway.datalayer import Prober
from kubellm.gateway.disagg import forward_disaggregated
from kubellm.gateway.discovery import DiscoverySource
from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.errors import (GatewayError, ModelNotFoundError, NoEndpointError, OverloadedError,
                                    PayloadTooLargeError, error_body)
from kubellm.gateway.h1 import H1Pool
from kubellm.gateway.k8s import pool_for_label
from kubellm.gateway.kvevents import KvEventSubscriber, kv_address
from kubellm.gateway.models import ModelTable, Target
from kubellm.gateway.payload import Kind, ParsedRequest, parse_request
from kubellm.gateway.pool import Pool
from kubellm.gateway.precise import PreciseHasher, build_precise_hasher
from kubellm.gateway.predictionmetrics import register_prediction_metrics
from kubellm.gateway.proxy import Proxy, build_outgoing
from kubellm.gateway.relay import Accounting
from kubellm.gateway.scheduling.learner import LatencyState
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.prefix import block_hashes
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler
from kubellm.gateway.telemetry import GatewayMetrics, finish_span, request_span
from kubellm.gateway.tenants import TenantRegistry
from kubellm.gateway.upstream import Upstream
from kubellm.gateway.workers import WORKER_SCOPE, PeerMetrics
from kubellm.kvhash import BlockHasher

Activator = Callable[[str], Awaitable[None]]

log = logging.getLogger("kubellm.gateway")
access_log = logging.getLogger("kubellm.gateway.access")

_FORWARDED = ("traceparent", "tracestate", "x-request-id")
PREFIX_BLOCK_CHARS = 64  # ~16 tokens of English, vLLM's default block size
# Prompts longer than this are tokenized and hashed in a worker thread: an 8k-token prompt
# costs milliseconds (docs/gateway.md), too long to hold the event loop.
OFFLOAD_PROMPT_CHARS = 8192


def error_response(err: GatewayError) -> web.Response:
    headers = {"Retry-After": str(max(1, math.ceil(err.retry_after)))} if err.retry_after is not None else None
    return web.json_response(error_body(err), status=err.status, headers=headers)


class Gateway:
    def __init__(self, config: GatewayConfig, *, discovery: Sequence[DiscoverySource] = (),
                 activator: Activator | None = None, clock: Clock | None = None,
                 rng: random.Random | None = None, tracer: trace.Tracer | None = None) -> None:
        self.clock = clock or MonotonicClock()
        self.rng = rng or random.Random()
        self.routing = RoutingState(rng=self.rng, latency=LatencyState(self.clock.now))
        self.metrics = GatewayMetrics()
        register_prediction_metrics(self.metrics.registry, self.routing.latency)
        self.tracer = tracer or trace.get_tracer("kubellm.gateway")
        # without an SDK the API's tracer records nothing: skip span and propagation work
        # per request and forward the client's trace headers untouched
        self.tracing = not isinstance(self.tracer, (trace.NoOpTracer, trace.ProxyTracer)) or not isinstance(
            trace.get_tracer_provider(), (trace.NoOpTracerProvider, trace.ProxyTracerProvider))
        self.activator = activator
        self._discovery = list(discovery)
        self.pools: dict[str, Pool] = {}
        self.in_flight = 0
        self.held: dict[str, int] = {}  # requests held per model while it scales from zero
        self.draining = False
        self._activations: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._session: aiohttp.ClientSession | None = None  # probes and scrapes
        self._h1: H1Pool | None = None  # requests to engines
        self._kv: KvEventSubscriber | None = None
        self._kv_watched: set[str] = set()
        self.peers: PeerMetrics | None = None  # the other workers of `--workers N`
        self._reloaded = asyncio.Event()  # set (and replaced) by each apply_config: wakes held requests
        self.apply_config(config)

    # -- configuration and membership --------------------------------------------------
    def apply_config(self, config: GatewayConfig) -> None:
        """Install *config* (at start and on reload); endpoint state of kept URLs survives."""
        tenants = TenantRegistry.from_config(config.auth, self.clock, getattr(self, "tenants", None))  # raises before any change
        profiles = config.all_profiles()
        pools: dict[str, Pool] = {}
        for m in config.models:
            for name, profile, static in self._pool_specs(m):
                pool = Pool(name, Scheduler(profiles[profile], self.routing), self._breaker(config),
                            max_outstanding=m.max_outstanding_per_endpoint, max_queue=m.max_queue,
                            queue_s=config.timeouts.queue_s)
                old = self.pools.get(name)
                if old is not None:
                    pool.take_over(old)
                if static:
                    pool.set_urls(static)
                pools[name] = pool
        listed = {e.url for p in pools.values() for e in p.endpoints}
        self._forget({e.url for p in self.pools.values() for e in p.endpoints} - listed)
        self.config, self.tenants, self.pools = config, tenants, pools
        self.precise: dict[str, PreciseHasher] = {
            m.name: h for m in config.models if (h := build_precise_hasher(m)) is not None}
        self.models = ModelTable(config, self.rng, routable=lambda pool: self.pools[pool].has_routable())
        if self._h1 is not None:
            self.proxy = Proxy(config, Upstream(self._h1, config.timeouts), self.metrics)
        self._sync_kv_events()
        self._reloaded.set()  # requests held for a scale from zero move to the new pools
        self._reloaded = asyncio.Event()

    @staticmethod
    def _pool_specs(m: ModelConfig) -> list[tuple[str, str, tuple[str, ...]]]:
        if m.disaggregation is None:
            return [(m.name, m.profile, m.endpoints)]
        d = m.disaggregation
        return [(f"{m.name}/prefill", d.prefill_profile, d.prefill_endpoints),
                (f"{m.name}/decode", d.decode_profile, d.decode_endpoints)]

    def _breaker(self, config: GatewayConfig) -> Callable[[], CircuitBreaker]:
        r = config.resilience
        return lambda: CircuitBreaker(self.clock, failures=r.breaker_failures, open_s=r.breaker_open_s)

    def set_endpoints(self, pool: str, urls: Sequence[str]) -> None:
        """Discovery's entry point: *pool* is a model name or ``<model>/prefill|decode``."""
        target = self.pools.get(pool)
        if target is None:  # Kubernetes labels carry the label-safe form of the name
            name = pool_for_label(pool, self.pools)
            if name is None:
                log.warning("discovery reported endpoints for unknown model %r; ignored", pool)
                return
            target, pool = self.pools[name], name
        gone = {e.url for e in target.endpoints} - set(urls)
        for ep in target.set_urls(urls):
            if self._prober is not None:
                self._spawn(self._prober.check_health(ep))
        self._forget(gone)
        self._sync_kv_events()

    def _forget(self, gone: set[str]) -> None:
        """Drop the routing state and series of endpoints removed (by discovery or a reload)."""
        for url in gone:
            self.routing.prefix.forget_endpoint(url)
            self.routing.latency.forget_endpoint(url)
            self.metrics.forget_endpoint(url)  # keep label sets bounded as pods come and go

    def _sync_kv_events(self) -> None:
        """Subscribe to the KV events of every endpoint whose model publishes them."""
        if self._kv is None:
            return
        wanted: dict[str, tuple[str, BlockHasher | None]] = {}
        for m in self.config.models:
            precise = self.precise.get(m.name)
            for name, _, _ in self._pool_specs(m):
                for ep in self.pools[name].endpoints:
                    address = kv_address(m, ep.url)
                    if address is not None:
                        wanted[ep.url] = (address, None if precise is None else precise.hasher)
        for url in set(self._kv_watched) - set(wanted):
            self._kv.unwatch(url)
        for url, (address, hasher) in wanted.items():
            self._kv.watch(url, address, hasher)
        self._kv_watched = set(wanted)

    def _on_kv_reject(self, endpoint: str, reason: str) -> None:
        self.metrics.kv_events_rejected.labels(endpoint, reason).inc()

    def endpoints(self) -> list[Endpoint]:
        return [e for p in self.pools.values() for e in p.endpoints]

    def _on_health(self, ep: Endpoint) -> None:
        self.metrics.endpoint_healthy.labels(ep.pool, ep.url).set(1 if ep.healthy else 0)
        pool = self.pools.get(ep.pool)
        if pool is not None:
            pool.notify()

    # -- lifecycle ----------------------------------------------------------------------
    _prober: Prober | None = None

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def start(self, app: web.Application | None = None) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self._h1 = H1Pool()
        self.proxy = Proxy(self.config, Upstream(self._h1, self.config.timeouts), self.metrics)
        r = self.config.resilience
        self._prober = Prober(self._session, self.endpoints, self._on_health,
                              scrape_s=r.scrape_interval_s, health_s=r.health_interval_s)
        self._kv = KvEventSubscriber(self.routing.precise_prefix, self._on_kv_reject)
        self._sync_kv_events()
        for source in self._discovery:
            self._spawn(source.run(self))
        await asyncio.sleep(0)
        await self._prober.health_round()
        self._spawn(self._prober.run_health())
        self._spawn(self._prober.run_scrape())

    async def stop(self, app: web.Application | None = None) -> None:
        for task in list(self._tasks) + list(self._activations.values()):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._activations.values(), return_exceptions=True)
        if self._kv is not None:
            await self._kv.close()
        if self._session is not None:
            await self._session.close()
        if self._h1 is not None:
            self._h1.close()
        if self.peers is not None:
            await self.peers.close()

    # -- scale from zero ----------------------------------------------------------------
    async def _ensure_routable(self, model: ModelConfig, names: Sequence[str]) -> list[Pool]:
        """The pools named *names*, once each has a routable endpoint: a request is held while
        *model* scales from zero (the activation hook, in local mode, is called; in the cluster
        ``kubellm_gateway_pending_requests`` drives KEDA). A single pool's requests await it only
        when the pool has no routable endpoint. A config reload meanwhile moves the request to the
        new pools, or fails it at once if the model was removed."""
        pools = self._pools_named(model, names)
        if all(p.has_routable() for p in pools):
            return pools
        if not model.scale_from_zero:
            raise NoEndpointError(f"no ready endpoint for model {model.name!r}")
        if sum(self.held.values()) >= self.config.resilience.max_held_activations:
            raise OverloadedError(f"too many requests held while {model.name!r} scales from zero", retry_after=5)
        self.held[model.name] = self.held.get(model.name, 0) + 1
        try:
            return await self._await_activation(model, names)
        finally:
            self.held[model.name] -= 1

    def _pools_named(self, model: ModelConfig, names: Sequence[str]) -> list[Pool]:
        try:
            return [self.pools[name] for name in names]
        except KeyError:
            raise ModelNotFoundError(f"the model {model.name!r} was removed from the gateway's config while "
                                     "this request waited for it to scale from zero") from None

    async def _await_activation(self, model: ModelConfig, names: Sequence[str]) -> list[Pool]:
        timeout = self.config.timeouts.activation_s
        deadline = asyncio.get_running_loop().time() + timeout
        activation = self._activation(model.name)
        while True:
            pools = self._pools_named(model, names)
            if all(p.has_routable() for p in pools):
                return pools
            if activation is not None and activation.done():
                if not activation.cancelled() and activation.exception() is not None:
                    raise NoEndpointError(f"activating model {model.name!r} failed: {activation.exception()}")
                activation = None
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise NoEndpointError(f"no endpoint of {model.name!r} became ready within {timeout:g}s")
            waiters = [asyncio.ensure_future(p.wait_routable(remaining)) for p in pools]
            waiters.append(asyncio.ensure_future(self._reloaded.wait()))  # the pools replaced: look again
            try:
                await asyncio.wait([*waiters, *([activation] if activation else [])],
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    def _activation(self, model: str) -> asyncio.Task[None] | None:
        """The activation hook's call for *model* (one shared by the requests it holds)."""
        if self.activator is None:
            return None
        task = self._activations.get(model)
        if task is None or task.done():
            task = self._activations[model] = asyncio.ensure_future(self.activator(model))
        return task

    # -- request handling ---------------------------------------------------------------
    def _routing_request(self, request: web.Request, parsed: ParsedRequest, target: Target,
                         tokens: tuple[int, ...]) -> RoutingRequest:
        seed = f"{target.lora or ''}\x1d" if target.lora else ""
        m = target.model
        return RoutingRequest(model=m.name, lora=target.lora,
                              prefix_hashes=block_hashes(seed + parsed.prompt_text, PREFIX_BLOCK_CHARS),
                              session=request.headers.get(self.config.session_header), token_hashes=tokens,
                              prompt_chars=len(parsed.prompt_text), stream=parsed.stream)

    def _upstream_headers(self, request: web.Request) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        for name in _FORWARDED:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        if self.tracing:
            propagate.inject(headers)  # our span becomes the engine request's parent
        return headers

    async def generate(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        """A generation request in a server span (the route when tracing; else :meth:`_generate`)."""
        with request_span(self.tracer, request.headers, kind) as span:  # the whole request, refusals too
            return await self._generate(request, kind, span)

    async def _generate(self, request: web.Request, kind: Kind, span: trace.Span | None = None) -> web.StreamResponse:
        acct = Accounting(model="unknown", tenant="unknown")
        self.in_flight += 1
        tenant, asked = None, None
        try:
            tenant = self.tenants.authenticate(request.headers.get("Authorization"))
            acct.tenant, acct.tenant_label = tenant.name, tenant.label
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise PayloadTooLargeError(f"request body is larger than {self.config.max_body_bytes} bytes") from exc
            parsed = parse_request(kind, raw)
            asked = parsed.model
            target = self.models.resolve(parsed.model)
            self.tenants.admit(tenant, parsed.model)
            acct.model = target.model.name
            return await self._dispatch(request, parsed, target, acct)
        except GatewayError as err:
            acct.status = err.status
            return error_response(err)
        finally:
            self.in_flight -= 1
            self._account(acct, request)
            if tenant is not None:
                self.tenants.charge(tenant, acct.prompt_tokens + acct.completion_tokens)
            if span is not None:
                finish_span(span, acct, asked)

    async def _dispatch(self, request: web.Request, parsed: ParsedRequest, target: Target,
                        acct: Accounting) -> web.StreamResponse:
        m = target.model
        hasher = self.precise.get(m.name)
        if hasher is None:
            tokens: tuple[int, ...] = ()
        elif len(parsed.prompt_text) > OFFLOAD_PROMPT_CHARS:  # milliseconds: off the event loop
            tokens = await asyncio.to_thread(hasher.event_hashes, parsed, target.lora)
        else:
            tokens = hasher.event_hashes(parsed, target.lora)
        rreq = self._routing_request(request, parsed, target, tokens)
        if parsed.stream:  # the latency learner counts the request as a prefill until then
            acct.on_first_content = partial(self.routing.latency.first_token, rreq)
        headers = self._upstream_headers(request)
        gauge = self.metrics.in_flight.labels(m.name)
        gauge.inc()
        try:
            if m.disaggregation is not None:
                prefill, decode = await self._ensure_routable(m, (f"{m.name}/prefill", f"{m.name}/decode"))
                return await forward_disaggregated(self.proxy, request, parsed, target.upstream_model, headers,
                                                   prefill, decode, rreq, acct)
            pool = self.pools[m.name]
            if not pool.has_routable():
                (pool,) = await self._ensure_routable(m, (m.name,))
            out = build_outgoing(parsed, target.upstream_model, headers, raw=parsed.raw)
            return await self.proxy.forward(request, parsed, out, pool, rreq, acct)
        finally:
            gauge.dec()
            self._learn(rreq, acct)

    def _learn(self, rreq: RoutingRequest, acct: Accounting) -> None:
        """Tell the latency learner what this request's TTFT and usage turned out to be."""
        first = acct.first_content
        ttft = first - acct.started if acct.status == 200 and first is not None else None
        decode = time.perf_counter() - first if first is not None else math.nan
        self.routing.latency.finish(rreq, ttft_s=ttft, decode_s=decode, prompt_tokens=acct.prompt_tokens,
                                    cached_tokens=acct.cached_tokens, completion_tokens=acct.completion_tokens)

    def _account(self, acct: Accounting, request: web.Request) -> None:
        m = self.metrics
        elapsed = time.perf_counter() - acct.started
        tenant = acct.tenant_label
        m.requests.labels(acct.model, acct.endpoint, tenant, str(acct.status)).inc()
        if acct.status == 200:
            m.e2e.labels(acct.model, acct.endpoint, tenant).observe(elapsed)
            if acct.first_token is not None:
                m.ttft.labels(acct.model, acct.endpoint, tenant).observe(acct.first_token - acct.started)
            if acct.itl:
                itl = m.itl.labels(acct.model, acct.endpoint, tenant)
                for gap in acct.itl:
                    itl.observe(gap)
            m.prompt_tokens.labels(acct.model, tenant).inc(acct.prompt_tokens)
            m.completion_tokens.labels(acct.model, tenant).inc(acct.completion_tokens)
        if self.config.access_log and access_log.isEnabledFor(logging.INFO):
            access_log.info(json.dumps({
                "path": request.path, "model": acct.model, "tenant": acct.tenant, "endpoint": acct.endpoint,
                "status": acct.status, "duration_ms": round(elapsed * 1000, 3),
                "prompt_tokens": acct.prompt_tokens, "completion_tokens": acct.completion_tokens,
                "request_id": request.headers.get("x-request-id")}))

    # -- plain endpoints ----------------------------------------------------------------
    async def list_models(self, request: web.Request) -> web.Response:
        tenant = self.tenants.authenticate(request.headers.get("Authorization"))
        data = [m for m in self.models.listing() if tenant.allows(str(m["id"]))]
        return web.json_response({"object": "list", "data": data})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        pools = {name: sum(e.routable() for e in p.endpoints) for name, p in self.pools.items()}
        status = 503 if self.draining else 200
        return web.json_response({"ready": status == 200, "routable_endpoints": pools}, status=status)

    async def prometheus(self, request: web.Request) -> web.Response:
        for name, pool in self.pools.items():
            self.metrics.queued.labels(name).set(pool.queued)
        for m in self.config.models:
            queued = sum(self.pools[p].queued for p, _, _ in self._pool_specs(m))
            self.metrics.pending.labels(m.name).set(self.held.get(m.name, 0) + queued)
        own = generate_latest(self.metrics.registry)
        if self.peers is not None and request.query.get("scope") != WORKER_SCOPE:
            own = (await self.peers.merged(own.decode())).encode()
        return web.Response(body=own, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- the application ----------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes, middlewares=[_errors])
        # coroutine functions (partials of one), which aiohttp calls as they are; a lambda
        # would be wrapped in a compatibility layer, one more call and await per request.
        # Without tracing (fixed when the gateway is made) the span layer is left out.
        generate = self.generate if self.tracing else self._generate
        app.router.add_post("/v1/chat/completions", partial(generate, kind="chat"))
        app.router.add_post("/v1/completions", partial(generate, kind="completions"))
        app.router.add_post("/v1/embeddings", partial(generate, kind="embeddings"))
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.prometheus)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        app.on_response_prepare.append(self._close_when_draining)
        return app

    async def _close_when_draining(self, request: web.Request, response: web.StreamResponse) -> None:
        """Draining (SIGTERM): a request on a kept-alive connection is still served, and its
        response closes the connection, so the client reconnects to where the Service now
        points instead of getting an error (a rolling restart fails no request)."""
        if self.draining:
            response.force_close()
            response.headers["Connection"] = "close"


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """The one place errors become OpenAI error JSON."""
    try:
        return await handler(request)
    except GatewayError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        http_err = GatewayError(exc.reason)
        http_err.status, http_err.error_type, http_err.code = exc.status, "invalid_request_error", None
        return error_response(http_err)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        rid = uuid.uuid4().hex[:12]
        log.exception("unexpected error (id %s)", rid)
        return error_response(GatewayError(f"internal gateway error (id {rid})"))


GATEWAY: web.AppKey[Gateway] = web.AppKey("kubellm_gateway", Gateway)


def build_gateway(config: GatewayConfig, *, discovery: Sequence[DiscoverySource] = (),
                  activator: Activator | None = None, clock: Clock | None = None,
                  rng: random.Random | None = None, tracer: trace.Tracer | None = None) -> web.Application:
    """Wire a gateway and return its aiohttp application (``app[GATEWAY]`` is the :class:`Gateway`);
    *tracer*: one of ``telemetry.configure_tracing``'s provider (None: the global one, if any)."""
    gateway = Gateway(config, discovery=discovery, activator=activator, clock=clock, rng=rng, tracer=tracer)
    app = gateway.app()
    app[GATEWAY] = gateway
    return app
