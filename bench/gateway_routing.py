"""Routing benchmark: kubellm's routing against round robin, the Rust vllm-router and the vLLM
production stack's router.

The simulated engines publish vLLM-format KV events with vLLM's own block hashing
(``sha256_cbor``, one ``PYTHONHASHSEED`` for engines and gateways), so ``kubellm-precise``
routes on what the engines report (profile ``precise``: the default with ``precise-prefix`` in
place of ``prefix-affinity``, as the gateway config generated from ``spec.routing.precisePrefix``
has it), and ``kubellm-precise-x2`` puts two such gateways in front of the same engines (each
turn goes to one of them at random); ``kubellm-x2`` does the same with two gateways routing on
their own approximate indexes (what gateway replicas without KV events do). ``kubellm-w2`` and
``kubellm-precise-w2`` are one ``kubellm gateway --workers 2`` (approximate, precise): the
kernel spreads the client's connections over the two worker processes, the shipped shape
of a gateway with as many workers as cores.

A simulated fleet (``kubellm sim``, cost model, restarted fresh for every router and load
so no router inherits another's warm caches) and three workload shapes (``--shapes``):
``chats``, multi-turn chats that share a few long system prompts; ``distinct``, many
distinct short one-turn prompts that share nothing (load balance is everything); ``mix``,
the two arriving together, half and half. For each shape, each load (a share of that
shape's measured capacity) and each router it prints TTFT p50/p90/p99, throughput and the
engines' prefix-cache hit rate, and for kubellm's latency-predicting profiles the median
error of their TTFT predictions; ``--runs N`` repeats everything with other workload seeds
and ends with each load's TTFT p90 ratios to the best other router, per run. The router
``floor`` sends the same requests one at a time, each to an idle engine, asking one token: the
ratios then say where 0.8x the best other router's TTFT p90 is below that floor. Then it
measures the gateway's own cost against a direct connection to a fixed-latency engine.

    .venv/bin/python bench/gateway_routing.py [--quick] [--json out.json]

Needs ``scripts/setup/gateway.sh`` (vllm-router into .tools/vllm-router; the production
stack's router into .tools/production-stack where a source checkout is given).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBELLM = [sys.executable, "-m", "kubellm.cli.main"]
VLLM_ROUTER = ROOT / ".tools/vllm-router/bin/vllm-router"
PRODUCTION_STACK = ROOT / ".tools/production-stack/bin/python"
SESSION_HEADER = "x-session-id"  # kubellm's default; the production stack's --session-key
MODEL = "bench-model"
HASH_ALGO, HASH_SEED = "sha256_cbor", "1234"  # engines and gateways alike: vLLM's block hashing
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


# -- processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(cmd: list[str], ready: str, count: int = 1, timeout: float = 60.0,
            env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Start *cmd* (with *env* added to the environment), wait for *count* lines containing
    *ready*, yield those lines; kill at exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": HASH_SEED, **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    lines: list[str] = []
    tail: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        while len(lines) < count:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{cmd[0]} exited early ({proc.wait()}): {' | '.join(tail)}")
            tail = (tail + [line.strip()])[-5:]  # shown if the process then exits
            if ready in line:
                lines.append(line.strip())
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd} not ready in {timeout}s")
        _drain_in_background(proc)  # keep stdout drained so the child never blocks on a full pipe
        yield lines
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM *proc*'s process group (it was started with ``start_new_session``); SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _drain_in_background(proc: subprocess.Popen[str]) -> None:
    import threading

    def pump() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    threading.Thread(target=pump, daemon=True).start()


@dataclass(frozen=True)
class Fleet:
    replicas: int = 3
    max_num_seqs: int = 8
    num_gpu_blocks: int = 700
    profile: str = "llama-3.1-8b-h100"
    time_scale: float = 1.0  # < 1: a slower accelerator, so routing dominates over proxy overhead

    def command(self, kv_port: int) -> list[str]:
        return KUBELLM + ["sim", "--port", "0", "--replicas", str(self.replicas), "--model", MODEL,
                          "--profile", self.profile, "--max-num-seqs", str(self.max_num_seqs),
                          "--num-gpu-blocks", str(self.num_gpu_blocks), "--time-scale", str(self.time_scale),
                          "--kv-events-port", str(kv_port), "--prefix-caching-hash-algo", HASH_ALGO]


KV_EVENTS: dict[str, str] = {}  # engine URL -> its ZMQ KV-event address, for the fleet now running


def _free_run(n: int) -> int:
    """A port P with P..P+n-1 free now (engine i publishes its KV events on P+i)."""
    for _ in range(50):
        base = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for p in range(base, base + n):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {n} consecutive free ports")


@contextlib.contextmanager
def fleet(spec: Fleet) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        for attempt in range(3):  # another process may take a free port before the fleet binds it
            kv_port = _free_run(spec.replicas)
            try:
                lines = stack.enter_context(process(spec.command(kv_port), "serving http://", count=spec.replicas))
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        urls = [line.split()[-1] for line in lines]
        KV_EVENTS.clear()
        KV_EVENTS.update({u: f"tcp://127.0.0.1:{kv_port + i}" for i, u in enumerate(urls)})
        yield urls


# candidate profiles tried against the default (``--routers kubellm:NAME``)
EXTRA_PROFILES = {
    "balanced": {"scorers": [{"type": "prefix-affinity", "weight": 2}, {"type": "outstanding-requests", "weight": 3},
                             {"type": "queue-depth", "weight": 2}, {"type": "kv-cache-usage", "weight": 1}]},
    # the default profile with the engines' KV events in place of the gateway's own estimate, the
    # prefix scored in blocks short of the best holder (missBlocks 16), as generated from the spec
    "precise": {"scorers": [{"type": "precise-prefix", "weight": 3, "params": {"missBlocks": 16}},
                            {"type": "queue-depth", "weight": 2}, {"type": "kv-cache-usage", "weight": 1},
                            {"type": "outstanding-requests", "weight": 2},
                            {"type": "session-affinity", "weight": 1}, {"type": "lora-affinity", "weight": 1}]},
    # the same with the prefix scored as a share of the prompt (``precise`` before issue 16's
    # fourth pass, whose ``precise-miss16`` is today's ``precise``)
    "precise-share": {"scorers": [{"type": "precise-prefix", "weight": 3}, {"type": "queue-depth", "weight": 2},
                                  {"type": "kv-cache-usage", "weight": 1},
                                  {"type": "outstanding-requests", "weight": 2},
                                  {"type": "session-affinity", "weight": 1}, {"type": "lora-affinity", "weight": 1}]},
    # both: what the engines report, and what was just sent (not yet in their events)
    "precise-hybrid": {"scorers": [{"type": "precise-prefix", "weight": 3}, {"type": "prefix-affinity", "weight": 2},
                                   {"type": "queue-depth", "weight": 2}, {"type": "kv-cache-usage", "weight": 1},
                                   {"type": "outstanding-requests", "weight": 2},
                                   {"type": "session-affinity", "weight": 1}, {"type": "lora-affinity", "weight": 1}]},
}


def _model(urls: list[str], profile: str, precise: bool) -> dict[str, object]:
    model: dict[str, object] = {"name": MODEL, "endpoints": urls, "profile": profile}
    if precise:
        model.update(preciseTokenizer="sim", kvEventsEndpoints={u: KV_EVENTS[u] for u in urls},
                     kvHashAlgo=HASH_ALGO, kvHashSeed=HASH_SEED)
    return model


TRACE: dict[str, Path] = {}  # "file": where the next kubellm gateway traces its decisions (--trace)


@contextlib.contextmanager
def kubellm_gateway(urls: list[str], profile: str, precise: bool = False, workers: int = 1) -> Iterator[str]:
    trace = TRACE.pop("file", None) if workers == 1 else None
    command = [sys.executable, str(ROOT / "bench/trace_gateway.py")] if trace else KUBELLM
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gateway.yaml"
        cfg.write_text(yaml.safe_dump({
            "models": [_model(urls, profile, precise or profile.startswith("precise"))],
            "profiles": EXTRA_PROFILES,
            "resilience": {"scrapeIntervalS": 0.2}, "accessLog": False}))
        with process(command + ["gateway", "--config", str(cfg), "--port", "0", "--log-level", "warning",
                                "--workers", str(workers)], "listening on http://",
                     env={"KUBELLM_TRACE": str(trace)} if trace else None) as lines:
            yield lines[0].split()[-1]


@contextlib.contextmanager
def listening(cmd: list[str], port: int) -> Iterator[str]:
    """Start *cmd*, wait until it accepts connections on *port*, yield its URL; kill at exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited early ({proc.returncode})")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            time.sleep(0.2)
        time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


@contextlib.contextmanager
def vllm_router(urls: list[str], policy: str) -> Iterator[str]:
    port = free_port()
    with listening([str(VLLM_ROUTER), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *urls,
                    "--policy", policy, "--log-level", "warning", "--prometheus-port", str(free_port())],
                   port) as url:
        yield url


@contextlib.contextmanager
def production_stack(urls: list[str], logic: str) -> Iterator[str]:
    """The vLLM production stack's Python router (static discovery, one model on every engine)."""
    port = free_port()
    cmd = [str(PRODUCTION_STACK), "-m", "vllm_router.app", "--host", "127.0.0.1", "--port", str(port),
           "--service-discovery", "static", "--static-backends", ",".join(urls),
           "--static-models", ",".join([MODEL] * len(urls)), "--static-model-types", ",".join(["chat"] * len(urls)),
           "--routing-logic", logic, "--session-key", SESSION_HEADER, "--engine-stats-interval", "1",
           "--log-level", "warning"]
    with listening(cmd, port) as url:
        yield url


# -- workload ----------------------------------------------------------------------------
SHAPES = ("chats", "distinct", "mix")


@dataclass(frozen=True)
class Workload:
    shape: str = "chats"  # one of SHAPES
    distinct_words: int = 60  # words of a "distinct" one-turn prompt
    system_prompts: int = 6
    system_words: int = 900
    turns: int = 4
    user_words: int = 40
    max_tokens: int = 48
    think_s: float = 0.3
    seed: int = 7

    def systems(self) -> list[str]:
        rng = random.Random(self.seed)
        return [f"System {i}: " + " ".join(rng.choice(WORDS) for _ in range(self.system_words))
                for i in range(self.system_prompts)]


@dataclass
class Sample:
    ttft: float
    e2e: float
    tokens: int
    ok: bool


def _first_token(line: bytes) -> bool:
    try:
        choices = json.loads(line[6:]).get("choices") or []
    except ValueError:
        return False
    return any((c.get("delta") or {}).get("content") for c in choices)


async def chat_turn(session: aiohttp.ClientSession, base: str, messages: list[dict[str, str]],
                    max_tokens: int, sid: str) -> Sample:
    body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    start = time.perf_counter()
    ttft = None
    tokens = 0
    try:
        async with session.post(base + "/v1/chat/completions", json=body, headers={SESSION_HEADER: sid}) as resp:
            if resp.status != 200:
                await resp.read()
                return Sample(0.0, 0.0, 0, False)
            async for line in resp.content:
                # the first token, not the role-only chunk engines send before prefill ends
                if ttft is None and line.startswith(b"data: {") and _first_token(line):
                    ttft = time.perf_counter() - start
                if b'"usage": {' in line or b'"usage":{' in line:
                    m = re.search(rb'"completion_tokens":\s*(\d+)', line)
                    tokens = int(m.group(1)) if m else tokens
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return Sample(0.0, 0.0, 0, False)
    end = time.perf_counter() - start
    return Sample(ttft if ttft is not None else end, end, tokens, True)


def turns(wl: Workload, system: str | None, rng: random.Random) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(session id, messages) of each turn of one chat (*system* None: one distinct short
    prompt, one turn); the same for every router given the same *rng*."""
    sid = f"s{rng.randrange(1 << 40)}"
    if system is None:
        yield sid, [{"role": "user", "content": f"Request {sid}: "
                     + " ".join(rng.choice(WORDS) for _ in range(wl.distinct_words))}]
        return
    messages = [{"role": "system", "content": system}]
    for turn in range(wl.turns):
        messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(wl.user_words))})
        yield sid, list(messages)
        # the reply joins the history, as a chat client would send it next turn
        messages.append({"role": "assistant", "content": f"Reply {turn}: " + " ".join(WORDS[:20])})


async def conversation(session: aiohttp.ClientSession, base: str, wl: Workload, system: str | None,
                       rng: random.Random, out: list[Sample], stop_at: float) -> None:
    """One chat, think time between turns; *base* may list several routers (comma-separated):
    each turn goes to one at random (drawn apart from *rng*, so every router run sees the same
    messages)."""
    bases = base.split(",")
    for i, (sid, messages) in enumerate(turns(wl, system, rng)):
        if i:
            await asyncio.sleep(wl.think_s)
        if time.perf_counter() > stop_at:
            return
        out.append(await chat_turn(session, random.choice(bases), messages, wl.max_tokens, sid))


def schedule(wl: Workload, rate_rps: float, duration_s: float) -> list[tuple[float, int | None, int]]:
    """(start offset, system prompt or None for a distinct one-turn prompt, seed) of every
    conversation: the same for every router, so they all see the same arrivals and messages.
    *rate_rps* counts requests (turns); ``mix`` gives each kind half of it."""
    rng = random.Random(wl.seed * 1_000_003 + int(rate_rps * 1000))
    chat_share = {"chats": 1.0, "distinct": 0.0, "mix": 0.5}[wl.shape]
    out: list[tuple[float, int | None, int]] = []
    for chats, rate in ((True, rate_rps * chat_share / wl.turns), (False, rate_rps * (1 - chat_share))):
        t = 0.0
        while rate > 0:
            t += rng.expovariate(rate)
            if t > duration_s:
                break
            system = min(int(rng.paretovariate(1.2)) - 1, wl.system_prompts - 1) if chats else None  # hot prompts
            out.append((t, system, rng.randrange(1 << 30)))
    return sorted(out, key=lambda a: a[0])


async def open_loop(base: str, wl: Workload, rate_rps: float, duration_s: float) -> tuple[list[Sample], float]:
    """Conversations arrive as a Poisson process sized so turns arrive at *rate_rps*."""
    systems = wl.systems()
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        start = time.perf_counter()
        stop_at = start + duration_s
        tasks = []
        for offset, system, seed in schedule(wl, rate_rps, duration_s):
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            tasks.append(asyncio.ensure_future(
                conversation(session, base, wl, None if system is None else systems[system], random.Random(seed),
                             samples, stop_at)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return samples, elapsed


FLOOR = "floor"
FLOOR_REQUESTS = 120  # the floor's sample: the first conversations' turns, up to this many


async def serial_floor(urls: list[str], wl: Workload, rate_rps: float, duration_s: float) -> list[Sample]:
    """The floor no router can beat by balancing: the same requests (the first
    :data:`FLOOR_REQUESTS` of the schedule) sent one at a time, each straight to an idle engine
    (a chat's to the engine of its system prompt, so its turns find their prefix cached; a
    distinct prompt's in turn), asking for one token: the TTFT of each is its service time alone."""
    systems = wl.systems()
    out: list[Sample] = []
    async with aiohttp.ClientSession() as session:
        for n, (_, system, seed) in enumerate(schedule(wl, rate_rps, duration_s)):
            url = urls[(n if system is None else system) % len(urls)]
            for sid, messages in turns(wl, None if system is None else systems[system], random.Random(seed)):
                out.append(await chat_turn(session, url, messages, 1, sid))
            if len(out) >= FLOOR_REQUESTS:
                break
    return out


async def closed_loop(base: str, wl: Workload, concurrency: int, duration_s: float) -> float:
    """Completed turns per second with *concurrency* conversations always running."""
    rng = random.Random(wl.seed)
    systems = wl.systems()
    samples: list[Sample] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        stop_at = start + duration_s

        async def worker() -> None:
            share = {"chats": 1.0, "distinct": 0.0, "mix": 0.5}[wl.shape]
            while time.perf_counter() < stop_at:
                # in a mix, a chat is four turns: draw chats a quarter as often to split turns half and half
                chat = rng.random() < share / (share + (1 - share) * wl.turns) if 0 < share < 1 else share == 1
                await conversation(session, base, Workload(**{**wl.__dict__, "think_s": 0.0}),
                                   rng.choice(systems) if chat else None, rng, samples, stop_at)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return sum(s.ok for s in samples) / elapsed


async def engine_prefix_hits(urls: list[str]) -> tuple[float, float]:
    hits = queries = 0.0
    async with aiohttp.ClientSession() as s:
        for u in urls:
            async with s.get(u + "/metrics") as resp:
                for line in (await resp.text()).splitlines():
                    if line.startswith("vllm:prefix_cache_hits_total"):
                        hits += float(line.split()[-1])
                    elif line.startswith("vllm:prefix_cache_queries_total"):
                        queries += float(line.split()[-1])
    return hits, queries


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class Row:
    router: str
    shape: str
    run: int
    load: str
    rate: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    e2e_p50_ms: float
    e2e_p90_ms: float
    req_s: float
    tok_s: float
    prefix_hit: float
    errors: int
    extra: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def router(name: str, urls: list[str]) -> Iterator[str]:
    if name == "round-robin":
        with kubellm_gateway(urls, "round-robin") as u:
            yield u
    elif name.startswith("kubellm-precise-x2"):  # two gateways, one view of the engines' caches (their events)
        profile = name.partition(":")[2] or "precise"
        with kubellm_gateway(urls, profile, True) as u1, kubellm_gateway(urls, profile, True) as u2:
            yield f"{u1},{u2}"
    elif name.startswith("kubellm-precise-w2"):  # one gateway of two worker processes, on the engines' events
        with kubellm_gateway(urls, name.partition(":")[2] or "precise", True, workers=2) as u:
            yield u
    elif name.startswith("kubellm-precise"):  # the profile (default: precise) on the engines' KV events
        with kubellm_gateway(urls, name.partition(":")[2] or "precise", True) as u:
            yield u
    elif name.startswith("kubellm-x2"):  # two gateways, each with its own approximate index
        profile = name.partition(":")[2] or "default"
        with kubellm_gateway(urls, profile) as u1, kubellm_gateway(urls, profile) as u2:
            yield f"{u1},{u2}"
    elif name.startswith("kubellm-w2"):  # one gateway of two worker processes, each with its own approximate index
        with kubellm_gateway(urls, name.partition(":")[2] or "default", workers=2) as u:
            yield u
    elif name == "kubellm" or name.startswith("kubellm:"):
        with kubellm_gateway(urls, name.partition(":")[2] or "default") as u:
            yield u
    elif name.startswith("vllm-router/"):
        with vllm_router(urls, name.split("/", 1)[1]) as u:
            yield u
    elif name.startswith("production-stack/"):
        with production_stack(urls, name.split("/", 1)[1]) as u:
            yield u
    else:
        raise ValueError(name)


_WORKER = r'(?:,worker="\d+")?'  # --workers N: /metrics keeps each worker's estimates, labelled
_PREDICTION = re.compile(r'^kubellm_ttft_prediction_(abs_error_seconds|rel_error)\{quantile="0.5"' + _WORKER
                         + r'\} (\S+)$', re.M)
_COEFFICIENT = re.compile(r'^kubellm_ttft_model_coefficient\{endpoint="[^"]*",term="([a-z0-9_]+)"' + _WORKER
                          + r'\} (\S+)$', re.M)
_HORIZON = re.compile(r'^kubellm_prefix_index_horizon_blocks\{endpoint="[^"]*"' + _WORKER + r'\} (\S+)$', re.M)


async def prediction_errors(base: str) -> dict[str, float]:
    """Median |predicted - measured| TTFT of a kubellm gateway's latency model (ms and share),
    averaged over the gateways in *base*; {} for routers without one."""
    found: dict[str, list[float]] = {}
    async with aiohttp.ClientSession() as s:
        for b in base.split(","):
            with contextlib.suppress(aiohttp.ClientError):
                async with s.get(b + "/metrics") as resp:
                    text = await resp.text() if resp.status == 200 else ""
            for kind, value in _PREDICTION.findall(text):
                if value.lower() != "nan":
                    found.setdefault(kind, []).append(float(value))
            found.setdefault("horizon", []).extend(float(v) for v in _HORIZON.findall(text))
            for term, value in _COEFFICIENT.findall(text):  # the pool's: the same for every endpoint
                found.setdefault(f"coef_{term}", [float(value)])
    out = {}
    if "abs_error_seconds" in found:
        out["pred_abs_err_ms"] = 1000 * statistics.mean(found["abs_error_seconds"])
    if "rel_error" in found:
        out["pred_rel_err"] = statistics.mean(found["rel_error"])
    out.update({k: statistics.mean(v) for k, v in found.items() if k.startswith("coef_")})
    if found.get("horizon"):  # the approximate index's learned horizons, blocks (inf: none learned)
        out["horizon_min_blocks"] = min(found["horizon"])
        out["horizon_max_blocks"] = max(found["horizon"])
    return out


def run_one(name: str, spec: Fleet, wl: Workload, load: str, rate: float, duration: float, run: int) -> Row:
    if name == FLOOR:
        with fleet(spec) as urls:
            start = time.perf_counter()
            samples = asyncio.run(serial_floor(urls, wl, rate, duration))
            elapsed = time.perf_counter() - start
            hits, queries = asyncio.run(engine_prefix_hits(urls))
        return _row(name, wl, run, load, rate, samples, elapsed, hits / queries if queries else 0.0, {})
    if TRACE.get("dir") and name.startswith("kubellm"):
        TRACE["file"] = TRACE["dir"] / f"{wl.shape}-{load}-r{run}-{name.replace('/', '_').replace(':', '_')}.jsonl"
    with fleet(spec) as urls, router(name, urls) as base:
        samples, elapsed = asyncio.run(open_loop(base, wl, rate, duration))
        hits, queries = asyncio.run(engine_prefix_hits(urls))
        extra = asyncio.run(prediction_errors(base)) if name.startswith("kubellm") else {}
    return _row(name, wl, run, load, rate, samples, elapsed, hits / queries if queries else 0.0, extra)


def _row(name: str, wl: Workload, run: int, load: str, rate: float, samples: list[Sample], elapsed: float,
         hit: float, extra: dict[str, float]) -> Row:
    ok = [s for s in samples if s.ok]
    ttfts = [s.ttft * 1000 for s in ok]
    e2es = [s.e2e * 1000 for s in ok]
    return Row(name, wl.shape, run, load, rate, pct(ttfts, 0.5), pct(ttfts, 0.9), pct(ttfts, 0.99), pct(e2es, 0.5),
               pct(e2es, 0.9), len(ok) / elapsed, sum(s.tokens for s in ok) / elapsed, hit, len(samples) - len(ok),
               extra)


# -- gateway overhead ----------------------------------------------------------------------
async def _latencies(base: str, n: int) -> list[float]:
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 1}
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(20):
            async with s.post(base + "/v1/completions", json=body) as r:
                await r.read()
        for _ in range(n):
            t = time.perf_counter()
            async with s.post(base + "/v1/completions", json=body) as r:
                await r.read()
            out.append(time.perf_counter() - t)
    return out


async def _saturation(base: str, concurrency: int, duration: float) -> float:
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 1}
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        stop = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with s.post(base + "/v1/completions", json=body) as r:
                    await r.read()
                    done += r.status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / duration


def overhead(quick: bool) -> dict[str, float]:
    n = 300 if quick else 1500
    cmd = KUBELLM + ["sim", "--port", "0", "--replicas", "1", "--model", MODEL, "--fixed-ttft-ms", "0",
                     "--fixed-tpot-ms", "0"]
    with process(cmd, "serving http://") as lines:
        engine = lines[0].split()[-1]
        with kubellm_gateway([engine], "default") as gw, vllm_router([engine], "round_robin") as vr:
            direct: list[float] = []
            via: list[float] = []
            rust: list[float] = []
            for _ in range(3):  # interleave so drift hits all alike
                direct += asyncio.run(_latencies(engine, n // 3))
                via += asyncio.run(_latencies(gw, n // 3))
                rust += asyncio.run(_latencies(vr, n // 3))
            secs = 3 if quick else 8
            sat_direct = asyncio.run(_saturation(engine, 32, secs))
            sat_gw = asyncio.run(_saturation(gw, 32, secs))
            sat_rust = asyncio.run(_saturation(vr, 32, secs))
    return {"direct_p50_ms": pct(direct, 0.5) * 1e3, "direct_p99_ms": pct(direct, 0.99) * 1e3,
            "kubellm_added_p50_ms": (pct(via, 0.5) - pct(direct, 0.5)) * 1e3,
            "kubellm_added_p99_ms": (pct(via, 0.99) - pct(direct, 0.99)) * 1e3,
            "vllm_router_added_p50_ms": (pct(rust, 0.5) - pct(direct, 0.5)) * 1e3,
            "vllm_router_added_p99_ms": (pct(rust, 0.99) - pct(direct, 0.99)) * 1e3,
            "saturation_direct_rps": sat_direct, "saturation_kubellm_rps": sat_gw,
            "saturation_vllm_router_rps": sat_rust}


# -- main --------------------------------------------------------------------------------
ROUTERS = ["round-robin", "kubellm", "kubellm:weighted", "vllm-router/cache_aware", "vllm-router/power_of_two",
           "production-stack/prefixaware", "production-stack/session"]


def print_row(row: Row) -> None:
    pred = (f"  pred err {row.extra['pred_abs_err_ms']:5.0f} ms {row.extra.get('pred_rel_err', float('nan')):5.0%}"
            if "pred_abs_err_ms" in row.extra else "")
    if "horizon_min_blocks" in row.extra:
        pred += f"  horizon {row.extra['horizon_min_blocks']:.0f}-{row.extra['horizon_max_blocks']:.0f}"
    print(f"{row.shape:<8} r{row.run} {row.load:>5} {row.router:<30} ttft p50/p90/p99 {row.ttft_p50_ms:7.0f} "
          f"{row.ttft_p90_ms:7.0f} {row.ttft_p99_ms:7.0f} ms  e2e p90 {row.e2e_p90_ms:6.0f} ms  "
          f"{row.req_s:6.2f} req/s  prefix hit {row.prefix_hit:5.1%}  errors {row.errors}{pred}", flush=True)


def ratios(rows: list[Row], candidate: str) -> list[dict[str, object]]:
    """Per shape, load and run: the candidate's TTFT p90 over the best other router's (and
    round robin's), and whether 0.8x the best other router's is below the floor (then that bar
    cannot be met). Other kubellm profiles on the engines' events are not "other routers"."""
    out: list[dict[str, object]] = []
    keys = sorted({(r.shape, r.load, r.run) for r in rows}, key=lambda k: (k[0], float(k[1].rstrip("%")), k[2]))
    for shape, load, run in keys:
        group = {r.router: r for r in rows if (r.shape, r.load, r.run) == (shape, load, run)}
        mine = group.get(candidate)
        others = {n: r for n, r in group.items()
                  if n not in (candidate, FLOOR) and not n.startswith("kubellm-precise")}
        if mine is None or not others:
            continue
        best = min(others.values(), key=lambda r: r.ttft_p90_ms)
        rr = group.get("round-robin")
        floor = group.get(FLOOR)
        out.append({"shape": shape, "load": load, "run": run, "best_other": best.router,
                    "vs_best": mine.ttft_p90_ms / best.ttft_p90_ms,
                    "vs_round_robin": mine.ttft_p90_ms / rr.ttft_p90_ms if rr else float("nan"),
                    "hit": mine.prefix_hit, "floor_p90_ms": floor.ttft_p90_ms if floor else float("nan"),
                    "bar_below_floor": bool(floor and 0.8 * best.ttft_p90_ms < floor.ttft_p90_ms)})
    return out


def print_ratios(table: list[dict[str, object]], candidate: str) -> None:
    print(f"\nTTFT p90 of {candidate} / best other router (/ round robin), per run:")
    for r in table:
        below = "  0.8x best is below the floor" if r["bar_below_floor"] else ""
        print(f"  {r['shape']:<8} {r['load']:>5} run {r['run']}: {r['vs_best']:5.2f}x ({r['best_other']})"
              f"  {r['vs_round_robin']:5.2f}x rr  hit {r['hit']:5.1%}  floor p90 {r['floor_p90_ms']:5.0f} ms{below}")


def load_rows(paths: list[Path]) -> list[Row]:
    """The rows of earlier ``--json`` outputs (several invocations of one matrix)."""
    return [Row(**row) for path in paths for row in json.loads(path.read_text())["rows"]]


def _spread(values: list[float], fmt: str) -> str:
    """Median, and the range when there are several: ``46 (44–48)``."""
    med = format(statistics.median(values), fmt)
    return med if len(values) == 1 else f"{med} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def summary(rows: list[Row], candidate: str) -> str:
    """Markdown: per shape, each router's TTFT p90 (ms) and prefix-cache hit ratio at each load,
    the median and range over runs; then the candidate's per-run ratios and how many cells of
    issue 18's bars it meets."""
    out: list[str] = []
    loads = sorted({r.load for r in rows}, key=lambda x: float(x.rstrip("%")))
    for shape in sorted({r.shape for r in rows}):
        mine = [r for r in rows if r.shape == shape]
        routers = sorted({r.router for r in mine}, key=lambda n: (n != candidate, n))
        out += [f"**{shape}**: TTFT p90 ms / prefix-cache hit %, median (range) of runs", "",
                "| router | " + " | ".join(loads) + " |", "|---|" + "---|" * len(loads)]
        for name in routers:
            cells = []
            for load in loads:
                got = [r for r in mine if r.router == name and r.load == load]
                cells.append("" if not got else _spread([r.ttft_p90_ms for r in got], ".0f") + " / "
                             + _spread([100 * r.prefix_hit for r in got], ".0f"))
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    table = ratios(rows, candidate)
    met = sum(r["vs_best"] <= 0.8 for r in table)  # type: ignore[operator]
    below = sum(bool(r["bar_below_floor"]) for r in table)
    rr = [r for r in table if r["shape"] == "distinct" and r["vs_round_robin"] == r["vs_round_robin"]]
    out.append(f"0.8x the best other router: {met} of {len(table)} (shape, load, run) cells; "
               f"0.8x is below the floor in {below}. Distinct, at most round robin's: "
               f"{sum(r['vs_round_robin'] <= 1.0 for r in rr)} of {len(rr)}.")  # type: ignore[operator]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test of the script)")
    ap.add_argument("--duration", type=float, default=None, help="seconds of load per run")
    ap.add_argument("--capacity-s", type=float, default=None, help="seconds of the closed loop measuring capacity")
    ap.add_argument("--routers", default=",".join(ROUTERS),
                    help=f"comma-separated; '{FLOOR}': the same requests one at a time on idle engines")
    ap.add_argument("--candidate", default="kubellm", help="the router the closing ratios are about")
    ap.add_argument("--shapes", default="chats", help=f"comma-separated, of {', '.join(SHAPES)}")
    ap.add_argument("--loads", default="0.5,0.8,1.0,1.2,3.0")
    ap.add_argument("--runs", type=int, default=1, help="repeat with other workload seeds")
    ap.add_argument("--first-run", type=int, default=0, help="number of the first run (its workload seed)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--profile", default=Fleet.profile, help="simulator cost-model profile")
    ap.add_argument("--replicas", type=int, default=Fleet.replicas)
    ap.add_argument("--num-gpu-blocks", type=int, default=Fleet.num_gpu_blocks, help="KV cache per engine")
    ap.add_argument("--system-prompts", type=int, default=Workload.system_prompts)
    ap.add_argument("--system-words", type=int, default=Workload.system_words)
    ap.add_argument("--time-scale", type=float, default=Fleet.time_scale, help="simulator model s per wall s")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--trace", type=Path, default=None,
                    help="directory: kubellm gateways (one worker) trace each routing decision there "
                         "(bench/trace_gateway.py), one JSON-lines file per row")
    ap.add_argument("--overhead-only", action="store_true")
    ap.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="JSON",
                    help="print markdown tables of earlier --json outputs (one matrix over several runs) and exit")
    args = ap.parse_args()
    if args.summarize:
        merged = load_rows(args.summarize)
        print(summary(merged, args.candidate))
        print_ratios(ratios(merged, args.candidate), args.candidate)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup of child processes
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        TRACE["dir"] = args.trace
    if not VLLM_ROUTER.exists():
        sys.exit("vllm-router is missing: run scripts/setup/gateway.sh")
    routers = args.routers.split(",")
    if any(r.startswith("production-stack/") for r in routers) and not PRODUCTION_STACK.exists():
        sys.exit("the production stack's router is missing: run scripts/setup/gateway.sh with PRODUCTION_STACK_SRC")
    if args.overhead_only:
        for k, v in overhead(args.quick).items():
            print(f"  {k:<28} {v:9.3f}")
        return
    duration = args.duration or (8.0 if args.quick else 25.0)
    spec = Fleet(replicas=args.replicas, num_gpu_blocks=args.num_gpu_blocks, profile=args.profile,
                 time_scale=args.time_scale)
    rows: list[Row] = []
    capacities: dict[str, float] = {}
    print(f"fleet: {spec}", flush=True)
    for run in range(args.first_run, args.first_run + args.runs):
        for shape in args.shapes.split(","):
            wl = Workload(shape=shape, system_prompts=args.system_prompts, system_words=args.system_words,
                          seed=7 + 1000 * run)
            if shape not in capacities:  # capacity: direct, client-side spread, many conversations at once
                with fleet(spec) as urls:
                    capacities[shape] = asyncio.run(
                        closed_loop_spread(urls, wl, spec, args.capacity_s or (6.0 if args.quick else 15.0)))
                print(f"workload: {wl}\nmeasured capacity: {capacities[shape]:.2f} turns/s", flush=True)
            for frac in (float(x) for x in args.loads.split(",")):
                for name in routers:
                    row = run_one(name, spec, wl, f"{frac:.0%}", capacities[shape] * frac, duration, run)
                    rows.append(row)
                    print_row(row)
                    if args.json:  # every row as it comes: a run cut short by a time limit keeps its rows
                        write_json(args, capacities, spec, rows, [], {})
    table = ratios(rows, args.candidate)
    print_ratios(table, args.candidate)
    ov = {} if args.skip_overhead else overhead(args.quick)
    if ov:
        print("\ngateway overhead vs direct (fixed-latency engine, 1-token completions):")
    for k, v in ov.items():
        print(f"  {k:<28} {v:9.3f}")
    if args.json:
        write_json(args, capacities, spec, rows, table, ov)


def write_json(args: argparse.Namespace, capacities: dict[str, float], spec: Fleet, rows: list[Row],
               table: list[dict[str, object]], ov: dict[str, float]) -> None:
    args.json.write_text(json.dumps({"capacity_rps": capacities, "fleet": spec.__dict__,
                                     "args": {k: str(v) for k, v in vars(args).items()},
                                     "rows": [r.__dict__ for r in rows], "ratios": table, "overhead": ov},
                                    indent=2))


async def closed_loop_spread(urls: list[str], wl: Workload, spec: Fleet, duration: float) -> float:
    """Capacity measured straight on the engines (no router): one closed loop per engine."""
    per = spec.max_num_seqs * 2
    rates = await asyncio.gather(*(closed_loop(u, wl, per, duration) for u in urls))
    return float(sum(rates))


if __name__ == "__main__":
    main()
