"""Where a router's prefix-cache misses and slow turns come from (issue 16, fourth pass).

Runs one router of ``bench/gateway_routing.py`` on its fleet and chats workload (the same
arrivals and messages for a given seed and rate) with the gateway's access log on, follows
the engines' own KV events itself, and records for every turn: when it was sent, the engine
(and gateway worker) that served it, what each engine held of its prompt when it was sent
(from the events: what the engines had reported by then), the tokens the engine reported
cached, and its TTFT. Each turn's missed prompt tokens are then split into:

- ``new``: blocks of a later turn that no engine had ever held when it was sent (the last
  reply and the new user message),
- ``cold``: the system prompt's blocks of a chat's first turn that no engine had ever held
  (its first use, or a first use still in prefill; the first user message is ``new``),
- ``evicted``: blocks some engine had held earlier but none held when it was sent,
- ``sent_away``: blocks another engine held but the serving one did not (the router's
  choice threw them away: avoidable),
- ``lost``: blocks the serving engine held when the turn was sent but no longer at its
  prefill (evicted in between, or events not yet read),
- ``partial``: the prompt's last, partial block (never cached).

    PYTHONPATH=src .venv/bin/python bench/precise_misses.py --router kubellm-precise-w2 \
        --num-gpu-blocks 600 --seed-run 0 --rate 9.6 --duration 90 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_routing as gr  # noqa: E402

from kubellm.gateway.kvevents import KvEventSubscriber, decode_events  # noqa: E402
from kubellm.gateway.scheduling.prefix import PrefixIndex  # noqa: E402
from kubellm.gateway.tokenizers import SimTokenizer  # noqa: E402
from kubellm.kvhash import BlockHasher, resolve_seed  # noqa: E402

BLOCK = 16
SLOW_MS = 90.0  # between the two modes of the p90s (about 50-60 ms and 115-160 ms)


@dataclass
class Turn:
    rid: str
    system: int
    turn: int
    sent: float
    held: dict[str, int]  # engine -> leading blocks it held (its events) when the turn was sent
    blocks: int  # full blocks of the prompt
    ever: int  # leading blocks that some engine had held at some time before the turn was sent
    prompt_tokens: int = 0
    cached_tokens: int = 0
    ttft_ms: float = 0.0
    end: float = 0.0
    ok: bool = False
    engine: str = ""
    worker: str = ""
    in_flight: dict[str, int] = field(default_factory=dict)  # engine -> this run's turns there at send
    split: dict[str, int] = field(default_factory=dict)  # missed tokens by cause


_TOKENIZER = SimTokenizer()
_HASHER = BlockHasher(gr.HASH_ALGO, resolve_seed(gr.HASH_ALGO, gr.HASH_SEED), BLOCK)


def prompt_hashes(messages: list[dict[str, str]]) -> list[int]:
    """The engines' KV-event hashes of a chat prompt's full blocks (the simulator's tokenizer)."""
    return _HASHER.event_hashes(_TOKENIZER.chat_ids({"messages": messages}))


class Oracle(KvEventSubscriber):
    """The engines' caches as their events report them, and every block any engine ever stored."""

    def __init__(self) -> None:
        self.index = PrefixIndex()
        super().__init__(self.index)
        self.ever: set[int] = set()

    def handle(self, endpoint: str, payload: bytes, hasher: BlockHasher | None) -> None:
        for e in decode_events(payload):
            if e.kind == "BlockStored":
                self.ever.update(e.hashes)
        super().handle(endpoint, payload, hasher)

    def ever_held(self, hashes: list[int]) -> int:
        n = 0
        for h in hashes:
            if h not in self.ever:
                break
            n += 1
        return n


@contextlib.contextmanager
def gateway(urls: list[str], name: str, log_path: Path) -> Iterator[str]:
    """The bench's gateway for router *name* (kubellm, kubellm-precise, -w2 forms), access log on."""
    precise = name.startswith("kubellm-precise")
    workers = 2 if "-w2" in name else 1
    profile = name.partition(":")[2] or ("precise" if precise else "default")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gateway.yaml"
        cfg.write_text(yaml.safe_dump({"models": [gr._model(urls, profile, precise)], "profiles": gr.EXTRA_PROFILES,
                                       "resilience": {"scrapeIntervalS": 0.2}, "accessLog": True}))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": gr.HASH_SEED}
        with log_path.open("w") as log:
            proc = subprocess.Popen(gr.KUBELLM + ["gateway", "--config", str(cfg), "--port", "0", "--log-level", "info",
                                                 "--workers", str(workers)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while "listening on http://" not in (text := log_path.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start: {text[-500:]}")
                time.sleep(0.2)
            line = next(x for x in text.splitlines() if "listening on http://" in x)
            time.sleep(1.0)  # the workers subscribe to the events
            yield line.split()[-1]
        finally:
            gr.stop_group(proc)


async def send(session: aiohttp.ClientSession, base: str, t: Turn, messages: list[dict[str, str]],
               wl: gr.Workload, sid: str) -> None:
    body = {"model": gr.MODEL, "messages": messages, "max_tokens": wl.max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    start = time.perf_counter()
    try:
        async with session.post(base + "/v1/chat/completions", json=body,
                                headers={gr.SESSION_HEADER: sid, "x-request-id": t.rid}) as resp:
            async for line in resp.content:
                if not t.ttft_ms and line.startswith(b"data: {") and gr._first_token(line):
                    t.ttft_ms = (time.perf_counter() - start) * 1000
                if line.startswith(b"data: {") and b'"usage"' in line:
                    usage = json.loads(line[6:]).get("usage") or {}
                    t.prompt_tokens = usage.get("prompt_tokens", 0)
                    t.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
            t.ok = resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        t.ok = False
    t.end = time.perf_counter()


async def chat(session: aiohttp.ClientSession, base: str, wl: gr.Workload, system: int, text: str, seed: int,
               oracle: Oracle, urls: list[str], out: list[Turn], stop_at: float) -> None:
    import random
    for i, (sid, messages) in enumerate(gr.turns(wl, text, random.Random(seed))):
        if i:
            await asyncio.sleep(wl.think_s)
        if time.perf_counter() > stop_at:
            return
        hashes = prompt_hashes(messages)
        t = Turn(f"{sid}-{i}", system, i, time.perf_counter(), oracle.index.matched_blocks(hashes, urls), len(hashes),
                 oracle.ever_held(hashes))
        out.append(t)
        await send(session, base, t, messages, wl, sid)


async def drive(base: str, urls: list[str], wl: gr.Workload, rate: float, duration: float) -> list[Turn]:
    oracle = Oracle()
    for url, address in gr.KV_EVENTS.items():
        oracle.watch(url, address)
    await asyncio.sleep(0.5)
    systems = wl.systems()
    out: list[Turn] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        start = time.perf_counter()
        tasks = []
        for offset, system, seed in gr.schedule(wl, rate, duration):
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            assert system is not None
            tasks.append(asyncio.ensure_future(chat(session, base, wl, system, systems[system], seed, oracle, urls,
                                                    out, start + duration)))
        await asyncio.gather(*tasks)
    await oracle.close()
    return out


def read_access_log(path: Path) -> dict[str, tuple[str, str]]:
    """request id -> (engine, worker) from the gateway's access log lines."""
    out = {}
    for line in path.read_text().splitlines():
        if '"request_id"' not in line:
            continue
        worker = line[1:line.index("]")] if line.startswith("[worker") else ""
        rec = json.loads(line[line.index("{"):])
        out[rec["request_id"]] = (rec["endpoint"], worker)
    return out


def classify(t: Turn, system_blocks: int) -> dict[str, int]:
    """Missed prompt tokens of *t*, whose chat's system prompt fills its first *system_blocks*
    blocks, by cause (see the module docstring)."""
    cached = t.cached_tokens // BLOCK
    mine = t.held.get(t.engine, 0)
    best = max(t.held.values(), default=0)
    ever = t.ever
    split = {"partial": t.prompt_tokens - t.blocks * BLOCK}
    split["lost"] = max(0, mine - cached) * BLOCK
    split["sent_away"] = max(0, best - max(mine, cached)) * BLOCK
    split["evicted"] = max(0, ever - max(best, cached)) * BLOCK
    known = max(ever, best, cached)
    split["cold"] = max(0, min(system_blocks, t.blocks) - known) * BLOCK if t.turn == 0 else 0
    split["new"] = max(0, t.blocks - max(known, system_blocks if t.turn == 0 else 0)) * BLOCK
    return split


def system_blocks(wl: gr.Workload) -> list[int]:
    """Leading blocks every chat of each system prompt shares (two chats' first turns compared)."""
    out = []
    for text in wl.systems():
        a, b = (prompt_hashes([{"role": "system", "content": text}, {"role": "user", "content": u}])
                for u in ("alpha", "zulu"))
        out.append(next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))))
    return out


def analyse(turns: list[Turn], wl: gr.Workload) -> dict[str, object]:
    shared = system_blocks(wl)
    ok = sorted((t for t in turns if t.ok), key=lambda t: t.sent)
    for t in ok:
        t.in_flight = {}
        for o in ok:
            if o is not t and o.sent <= t.sent < o.end:
                t.in_flight[o.engine] = t.in_flight.get(o.engine, 0) + 1
        t.split = classify(t, shared[t.system])
    prompt = sum(t.prompt_tokens for t in ok)
    cached = sum(t.cached_tokens for t in ok)
    causes = ("new", "partial", "cold", "evicted", "sent_away", "lost")
    missed = {c: sum(t.split.get(c, 0) for t in ok) for c in causes}
    slow = [t for t in ok if t.ttft_ms > SLOW_MS]
    away = [t for t in ok if t.split["sent_away"] >= 4 * BLOCK]
    return {
        "turns": len(ok), "errors": len(turns) - len(ok), "prompt_tokens": prompt,
        "hit": cached / prompt if prompt else 0,
        "missed_share": {c: v / prompt for c, v in missed.items()},
        "ttft_p50_ms": gr.pct([t.ttft_ms for t in ok], 0.5), "ttft_p90_ms": gr.pct([t.ttft_ms for t in ok], 0.9),
        "slow": len(slow), "slow_by_cause": _slow_causes(slow, ok),
        "sent_away": len(away), "sent_away_turn0": sum(t.turn == 0 for t in away),
        "sent_away_load": _away_load(away),
        "per_engine": {e: sum(t.engine == e for t in ok) for e in sorted({t.engine for t in ok})},
    }


def _big_miss(t: Turn) -> bool:
    return t.prompt_tokens - t.cached_tokens > 400  # more than a few turns' new messages: a long prefill


def _slow_causes(slow: list[Turn], ok: list[Turn]) -> dict[str, int]:
    """Each slow turn's likeliest cause: its own long prefill (by the cause of its miss), or a
    long prefill of another turn on its engine that overlapped its wait, or neither."""
    out: dict[str, int] = {}
    for t in slow:
        if _big_miss(t):
            cause = "own prefill: " + max((c for c in t.split if c != "partial"), key=lambda c: t.split[c])
        elif any(o.engine == t.engine and o is not t and _big_miss(o) and o.sent < t.sent + t.ttft_ms / 1000
                 and o.sent + o.ttft_ms / 1000 > t.sent for o in ok):
            cause = "behind another's long prefill"
        else:
            cause = "neither (queue or machine)"
        out[cause] = out.get(cause, 0) + 1
    return out


def _away_load(away: list[Turn]) -> dict[str, float]:
    """For turns sent away from the engine holding their prefix: in-flight turns at the chosen
    engine and at the best holder when sent (this run's turns, both gateways' workers)."""
    if not away:
        return {}
    chosen = [t.in_flight.get(t.engine, 0) for t in away]
    holder = [t.in_flight.get(max(t.held, key=lambda k: t.held[k]), 0) for t in away]
    return {"chosen_mean": statistics.mean(chosen), "holder_mean": statistics.mean(holder),
            "holder_busier_share": sum(h > c for h, c in zip(holder, chosen)) / len(away)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--router", default="kubellm-precise-w2")
    ap.add_argument("--num-gpu-blocks", type=int, default=600)
    ap.add_argument("--seed-run", type=int, default=0, help="gateway_routing.py's run number (workload seed)")
    ap.add_argument("--rate", type=float, default=None, help="turns/s (gateway_routing.py: capacity x load)")
    ap.add_argument("--duration", type=float, default=90.0)
    ap.add_argument("--system-prompts", type=int, default=12)
    ap.add_argument("--time-scale", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--reanalyse", type=Path, default=None, help="a --json file of an earlier run: its summary again")
    args = ap.parse_args()
    if args.reanalyse:
        saved = json.loads(args.reanalyse.read_text())
        run = saved["args"]
        wl = gr.Workload(system_prompts=int(run["system_prompts"]), seed=7 + 1000 * int(run["seed_run"]))
        print(json.dumps(analyse([Turn(**t) for t in saved["turns"]], wl), indent=1))
        return
    if args.rate is None:
        ap.error("--rate is needed for a run")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    spec = gr.Fleet(num_gpu_blocks=args.num_gpu_blocks, time_scale=args.time_scale)
    wl = gr.Workload(system_prompts=args.system_prompts, seed=7 + 1000 * args.seed_run)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gateway.log"
        with gr.fleet(spec) as urls, gateway(urls, args.router, log) as base:
            turns = asyncio.run(drive(base, urls, wl, args.rate, args.duration))
            hits, queries = asyncio.run(gr.engine_prefix_hits(urls))
            time.sleep(0.5)
        served = read_access_log(log)
    for t in turns:
        t.engine, t.worker = served.get(t.rid, ("", ""))
    summary = analyse(turns, wl)
    summary["engine_hit"] = hits / queries if queries else 0.0
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
                                         "turns": [asdict(t) for t in turns]}))


if __name__ == "__main__":
    main()
