"""The HTTP face of one simulated engine: vLLM's OpenAI-compatible routes on aiohttp.

One :class:`EngineServer` owns one engine, its metrics registry, its LoRA set and its
fault injector; a fleet is many of them on one event loop. Handlers only translate:
parsing and encoding are in :mod:`kubellm.sim.openai_api`, timing in the engine.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from kubellm.sim import metrics, openai_api, textgen, tokenizer
from kubellm.sim.config import SimConfig
from kubellm.sim.engine_api import Engine, GenRequest
from kubellm.sim.errors import RequestError
from kubellm.sim.faults import FaultInjector, FaultPlan
from kubellm.sim.kvcache import KvEvent
from kubellm.sim.kvevents import KvEventPublisher
from kubellm.sim.loras import LoraSet
from kubellm.sim.progress import Progress

JSON = "application/json"
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


class EngineServer:
    """One engine behind vLLM's HTTP API, listening on its own port."""

    def __init__(self, config: SimConfig, engine: Engine, vocab: textgen.OutputVocab,
                 max_model_len: int, index: int = 0, collector: metrics.VllmCollector | None = None,
                 kv_events: list[KvEvent] | None = None) -> None:
        self.config = config
        self.engine = engine
        self.index = index
        self.max_model_len = max_model_len
        self._vocab = vocab
        self._loras = LoraSet(config.model, config.lora_modules)
        self._faults = FaultInjector(config.faults, index)
        self._registry = metrics.build_registry(collector) if collector else None
        self._ready_at = 0.0
        self._closing = asyncio.Event()
        self._draining = False
        self._runner: web.AppRunner | None = None
        self._kv_events = kv_events
        self.kv_publisher: KvEventPublisher | None = None
        self.port = 0
        self.host = "127.0.0.1"
        self.crashed = False
        self._crash_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL of this engine (``http://host:port``), valid once started."""
        return f"http://{self.host}:{self.port}"

    # lifecycle ---------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._close_when_draining])
        r = app.router
        r.add_post("/v1/chat/completions", self._chat)
        r.add_post("/v1/completions", self._completions)
        r.add_get("/v1/models", self._models)
        r.add_get("/health", self._health)
        r.add_get("/ping", self._health)
        r.add_get("/version", self._version)
        r.add_get("/metrics", self._metrics)
        r.add_post("/tokenize", self._tokenize)
        r.add_post("/detokenize", self._detokenize)
        r.add_post("/v1/load_lora_adapter", self._load_lora)
        r.add_post("/v1/unload_lora_adapter", self._unload_lora)
        return app

    async def start(self, host: str, port: int) -> int:
        """Start the engine and listen on *host*:*port* (0: a free port); returns the port."""
        await self.engine.start()
        self._start_kv_events(host)
        loop = asyncio.get_running_loop()
        self._ready_at = loop.time() + self.config.faults.startup_delay_s
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.host = host
        server = site._server  # aiohttp keeps the bound socket here; port 0 needs it
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self.port

    def _start_kv_events(self, host: str) -> None:
        cfg, events = self.config, self._kv_events
        if events is None or cfg.kv_events_port is None:
            return
        pub_port = cfg.kv_events_port + self.index if cfg.kv_events_port else 0
        replay = cfg.kv_events_replay_port
        replay_port = None if replay is None else (replay + self.index if replay else 0)
        publisher = KvEventPublisher(host, pub_port, replay_port, cfg.kv_events_topic, fmt=cfg.kv_events_format)
        publisher.start()
        self.kv_publisher = publisher
        on_step = getattr(self.engine, "on_step", None)
        if on_step is not None:
            on_step.append(lambda: publisher.publish(events))

    def begin_drain(self) -> None:
        """Stop taking part in load balancing before stopping: /health answers 503 and every
        response closes its connection, so clients that keep connections open reconnect, and
        their new connections go where the Service now points. What a pod needs between its
        SIGTERM and the moment its endpoint leaves every node's rules."""
        self._draining = True

    @web.middleware
    async def _close_when_draining(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if self._draining:
            response.force_close()
        return response

    async def stop(self) -> None:
        self._closing.set()
        await self.engine.stop()
        if self.kv_publisher is not None:
            publisher, self.kv_publisher = self.kv_publisher, None
            await publisher.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def crash(self) -> None:
        """Stop serving as a crashed engine would: listener gone, connections dropped."""
        self.crashed = True
        await self.stop()

    def _ready(self) -> bool:
        return asyncio.get_running_loop().time() >= self._ready_at

    # plain routes ------------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self._ready() and not self._draining else 503)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.0+kubellm.sim"})

    async def _metrics(self, request: web.Request) -> web.Response:
        body = metrics.render(self._registry) if self._registry else b""
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list",
                                  "data": self._loras.model_cards(int(time.time()), self.max_model_len)})

    async def _tokenize(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            if "messages" in body:
                ids = tokenizer.encode(openai_api.render_chat(body["messages"]))
            elif isinstance(body.get("prompt"), str):
                ids = tokenizer.encode(body["prompt"])
            else:
                raise RequestError("send 'prompt' (a string) or 'messages'", param="prompt")
            self._loras.resolve(body.get("model"))
        except RequestError as err:
            return _error(err)
        return web.json_response({"count": len(ids), "max_model_len": self.max_model_len,
                                  "tokens": ids, "token_strs": None})

    async def _detokenize(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            ids = body.get("tokens")
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise RequestError("'tokens' must be a list of token ids", param="tokens")
            try:
                text = tokenizer.decode(ids)
            except ValueError as exc:
                raise RequestError(str(exc), param="tokens") from exc
        except RequestError as err:
            return _error(err)
        return web.json_response({"prompt": text})

    async def _load_lora(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            return web.Response(text=self._loras.load(body.get("lora_name"), body.get("lora_path")))
        except RequestError as err:
            return _error(err)

    async def _unload_lora(self, request: web.Request) -> web.Response:
        try:
            return web.Response(text=self._loras.unload((await _json_body(request)).get("lora_name")))
        except RequestError as err:
            return _error(err)

    # generation --------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        received = time.monotonic()  # arrival, before the body is parsed
        if not self._ready():
            return _error(RequestError("The engine is still loading the model.", status=503,
                                       err_type="ServiceUnavailableError"))
        fault = self._faults.plan()
        failed = self._fail(request, fault)
        if failed is not None:
            return failed
        try:
            body = await _json_body(request)
            lora = self._loras.resolve(body.get("model"))
            plan = openai_api.plan_request(body, chat, self._vocab, self.max_model_len,
                                           self.config.default_max_tokens)
        except RequestError as err:
            return _error(err)
        if fault.hang:
            await self._closing.wait()
            return web.Response(status=503)
        if fault.spike_s:
            await asyncio.sleep(fault.spike_s / self.config.time_scale)
            received = time.monotonic()
        model = lora or self.config.model
        gen = _gen_request(plan, lora, self._vocab)
        try:
            prog = self.engine.submit(gen, received)
        except RequestError as err:
            return _error(err)
        if plan.stream:
            return await self._stream(request, plan, model, prog, fault)
        return await self._respond(plan, model, prog)

    def _fail(self, request: web.Request, fault: FaultPlan) -> web.Response | None:
        """The answer of a request that an injected crash or error ends at once, if any."""
        if fault.crash:
            self._crash_task = asyncio.get_running_loop().create_task(self.crash())
            if request.transport is not None:
                request.transport.abort()  # the connection dies with the process
            return web.Response(status=500)
        if fault.error_status is not None:
            err_type = "InternalServerError" if fault.error_status >= 500 else "BadRequestError"
            return _error(RequestError("Injected fault: the simulator failed this request on purpose.",
                                       status=fault.error_status, err_type=err_type))
        return None

    async def _respond(self, plan: openai_api.Plan, model: str, prog: Progress) -> web.Response:
        while not prog.finished:
            await prog.wait()
        texts = self._vocab.texts
        text = "".join([texts[i] for i in plan.out_idx[:prog.num_out]])
        body = openai_api.full_response(plan, model, text, prog.num_out, prog.num_cached_tokens,
                                        prog.kv_transfer_params)
        return web.Response(body=body, content_type=JSON)

    async def _stream(self, request: web.Request, plan: openai_api.Plan, model: str, prog: Progress,
                      fault: FaultPlan) -> web.StreamResponse:
        resp = web.StreamResponse(headers=SSE_HEADERS)
        enc = openai_api.ChunkEncoder(plan, model, self._vocab)
        cut = fault.die_after_tokens
        try:
            await resp.prepare(request)
            if plan.chat:
                await resp.write(enc.role_chunk())
            sent = 0
            while True:
                avail = prog.num_out if cut is None else min(prog.num_out, cut)
                if avail > sent:
                    await resp.write(enc.tokens(sent, avail))
                    sent = avail
                if cut is not None and sent >= cut:
                    return _die(request, resp, self.engine, prog)
                if prog.finished and sent >= prog.num_out:
                    break
                await prog.wait()
            await resp.write(enc.final(prog.num_out, prog.num_cached_tokens, prog.kv_transfer_params))
            await resp.write_eof()
        except ConnectionResetError:  # the client went away: free the engine's slot
            self.engine.abort(prog)
        except asyncio.CancelledError:
            self.engine.abort(prog)
            raise
        return resp


def _die(request: web.Request, resp: web.StreamResponse, engine: Engine, prog: Progress) -> web.StreamResponse:
    """Cut the connection mid-stream, as an engine process dying would."""
    engine.abort(prog)
    resp.force_close()
    if request.transport is not None:
        request.transport.abort()
    return resp


def _gen_request(plan: openai_api.Plan, lora: str | None, vocab: textgen.OutputVocab) -> GenRequest:
    params = plan.kv_transfer_params or {}
    ids = vocab.ids
    return GenRequest(request_id=plan.request_id, prompt_ids=plan.prompt_ids, num_output=len(plan.out_idx),
                      output_ids=[ids[i] for i in plan.out_idx], finish_reason=plan.finish_reason, lora=lora,
                      stream=plan.stream, remote_decode=bool(params.get("do_remote_decode")),
                      kv_transfer_in=params if params.get("do_remote_prefill") else None)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


def _error(err: RequestError) -> web.Response:
    return web.Response(status=err.status, body=openai_api.error_body(err), content_type=JSON)
