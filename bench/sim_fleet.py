"""How large a simulated fleet one process serves faithfully, and what one core sustains.

Part 1 (fidelity): for each fleet size N, start ``kubellm sim --replicas N`` in a
subprocess pinned to one core, drive every engine with its own seeded Poisson stream of
streamed completions from this process (pinned to the other core), and compare the
TTFT and TPOT the client measured with what the cost model predicts for the very same
arrivals (``kubellm.sim.replay.simulate`` fed with the send times). The largest N whose
mean TTFT and mean TPOT are both within the tolerance (5%), and those of every smaller
size measured too, is reported (the same by median errors).

Part 2 (capacity): a fixed-latency fleet under closed-loop load; the server's own CPU
seconds (from /proc) give requests/s and streamed tokens/s per core of server CPU.

    .venv/bin/python bench/sim_fleet.py                       # the default sweep
    .venv/bin/python bench/sim_fleet.py --sizes 1,8,32 --duration 6 --json out.json
    .venv/bin/python bench/sim_fleet.py --published           # published vLLM runs vs the model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from collections.abc import Callable

import aiohttp

from kubellm.sim import get_profile, tokenizer
from kubellm.sim.replay import Arrival, simulate
from kubellm.sim.scheduler import Limits

CLI = [sys.executable, "-c", "from kubellm.cli.main import main; main()", "sim"]
CHUNK_MARK = b'data: {"id"'


@dataclass
class Sample:
    sent: float
    tokens: list[float] = field(default_factory=list)


def free_port_block(n: int) -> int:
    """A base port whose next *n* ports were free a moment ago (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65000 and all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no block of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_fleet(n: int, extra: list[str], core: int | None) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start ``kubellm sim --replicas n`` on a free block of ports (retried if one was taken)."""
    for attempt in range(3):
        try:
            return _start_fleet(n, extra, core)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_fleet(n: int, extra: list[str], core: int | None) -> tuple[subprocess.Popen[bytes], list[str]]:
    base = free_port_block(n)
    pre = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    proc = subprocess.Popen([*CLI, "--port", str(base), "--replicas", str(n), *extra],
                            stderr=subprocess.PIPE, preexec_fn=pre)
    assert proc.stderr is not None
    urls: list[str] = []
    while True:
        line = proc.stderr.readline().decode()
        if not line:
            raise RuntimeError(f"sim exited early with {proc.wait()}: {proc.stderr.read().decode()[-500:]}")
        if m := re.match(r"serving (\S+)", line):
            urls.append(m.group(1))
        if line.startswith("ready:"):
            return proc, urls


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _request(url: str, body: dict[str, object]) -> tuple[str, int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode()
    return host, int(port), head + payload


async def raw_post(url: str, body: dict[str, object], on_data: Callable[[bytes], None]) -> None:
    """POST over a plain socket and hand every read to *on_data* until the server closes.

    A minimal client keeps the load generator's own cost per token far below aiohttp's,
    so that the server, not the client, is what the benchmark measures.
    """
    host, port, raw = _request(url, body)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        while data := await reader.read(262144):
            on_data(data)
    finally:
        writer.close()


async def stream_one(url: str, prompt: str, max_tokens: int, sample: Sample) -> None:
    sample.sent = time.monotonic()
    carry = b""

    def on_data(data: bytes) -> None:
        nonlocal carry
        buf = carry + data  # a marker may straddle two reads
        n = buf.count(CHUNK_MARK)
        if n:
            sample.tokens.extend([time.monotonic()] * n)
        carry = buf[-(len(CHUNK_MARK) - 1):]

    await raw_post(url, {"prompt": prompt, "max_tokens": max_tokens, "stream": True}, on_data)
    if len(sample.tokens) < max_tokens:
        raise RuntimeError(f"{url}: stream ended after {len(sample.tokens)} of {max_tokens} tokens")
    del sample.tokens[max_tokens:]  # the closing chunk carries finish_reason, not a token


async def drive(urls: list[str], rate: float, duration: float, prompt_len: int, out_len: int,
                seed: int) -> list[list[tuple[str, Sample]]]:
    """Poisson arrivals per engine; returns (prompt, sample) per engine in send order."""
    per_engine: list[list[tuple[str, Sample]]] = [[] for _ in urls]
    loop = asyncio.get_running_loop()
    start = time.monotonic() + 0.2
    tasks = []
    for e, url in enumerate(urls):
        rng = random.Random(seed * 1000 + e)
        t = rng.expovariate(rate)
        i = 0
        while t < duration:
            prompt = f"engine {e} request {i} " + " ".join(rng.choice(WORDS) for _ in range(prompt_len))
            sample = Sample(0.0)
            per_engine[e].append((prompt, sample))
            tasks.append(loop.create_task(_at(start + t, stream_one(url, prompt, out_len, sample))))
            t += rng.expovariate(rate)
            i += 1
    await asyncio.gather(*tasks)
    return per_engine


async def _at(when: float, coro: object) -> None:
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    await coro  # type: ignore[misc]


WORDS = "the of and to in is it you he was for on are as with his they at be this have from".split()


def predict(profile_name: str, samples: list[tuple[str, Sample]], out_len: int) -> list[tuple[float, float]]:
    profile = get_profile(profile_name)
    limits = Limits(profile.max_num_seqs, profile.max_num_batched_tokens, 16)
    t0 = min(s.sent for _, s in samples)
    arrivals = [Arrival(s.sent - t0, tokenizer.encode(p), out_len) for p, s in samples]
    run = simulate(profile, limits, profile.num_gpu_blocks, arrivals)
    return [(tl.ttft, tl.tpot) for tl in run.timelines]


def fidelity(n: int, args: argparse.Namespace) -> dict[str, float]:
    proc, urls = start_fleet(n, ["--profile", args.profile], args.server_core)
    try:
        asyncio.run(warm_up(urls))
        before = asyncio.run(scrape_ttft(urls))
        cpu0, me0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
        wall0 = time.perf_counter()
        per_engine = asyncio.run(drive(urls, args.rate, args.duration, args.prompt_words, args.output, args.seed))
        cpu, client_cpu = cpu_seconds(proc.pid) - cpu0, cpu_seconds(os.getpid()) - me0
        wall = time.perf_counter() - wall0
        after = asyncio.run(scrape_ttft(urls))
        engine_ttft = (after[0] - before[0]) / max(1.0, after[1] - before[1])
    finally:
        stop(proc)
    m_ttft, m_tpot, p_ttft, p_tpot = [], [], [], []
    for samples in per_engine:
        if not samples:
            continue
        for (_, s), (pt, pp) in zip(samples, predict(args.profile, samples, args.output)):
            m_ttft.append(s.tokens[0] - s.sent)
            m_tpot.append((s.tokens[-1] - s.tokens[0]) / (len(s.tokens) - 1))
            p_ttft.append(pt)
            p_tpot.append(pp)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    ttft_rel = sorted(m / p - 1 for m, p in zip(m_ttft, p_ttft))
    tpot_rel = sorted(m / p - 1 for m, p in zip(m_tpot, p_tpot) if p > 0)
    return {
            "ttft_median_err": statistics.median(ttft_rel), "tpot_median_err": statistics.median(tpot_rel),
            "ttft_p90_err": ttft_rel[int(0.9 * (len(ttft_rel) - 1))],"engines": n, "requests": len(m_ttft), "server_cpu_util": cpu / wall,
            "client_cpu_util": client_cpu / wall,
            "ttft_measured_ms": 1000 * mean(m_ttft), "ttft_model_ms": 1000 * mean(p_ttft),
            "tpot_measured_ms": 1000 * mean(m_tpot), "tpot_model_ms": 1000 * mean(p_tpot),
            "ttft_engine_side_ms": 1000 * engine_ttft,
            "ttft_err": mean(m_ttft) / mean(p_ttft) - 1, "tpot_err": mean(m_tpot) / mean(p_tpot) - 1}


def largest_faithful_fleet(rows: list[dict[str, float]], tolerance: float, kind: str = "mean") -> int:
    """Largest measured size that passes with every smaller measured size passing too (0: none).

    A size passes when its TTFT and TPOT errors (``kind``: the mean's or the median's) are
    both within *tolerance*. A size that fails caps the answer below it even when a larger one
    happens to pass: capacity is claimed only up to the first failure.
    """
    key = "" if kind == "mean" else "_median"
    best = 0
    for r in sorted(rows, key=lambda r: r["engines"]):
        if abs(r[f"ttft{key}_err"]) > tolerance or abs(r[f"tpot{key}_err"]) > tolerance:
            break
        best = int(r["engines"])
    return best


async def warm_up(urls: list[str]) -> None:
    await asyncio.gather(*(stream_one(url, "warm up", 2, Sample(0.0)) for url in urls))


async def scrape_ttft(urls: list[str]) -> tuple[float, float]:
    """Sum and count of the TTFTs the engines recorded (from arrival at the server)."""
    total = count = 0.0
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url + "/metrics") as resp:
                text = await resp.text()
            for line in text.splitlines():
                if line.startswith("vllm:time_to_first_token_seconds_sum"):
                    total += float(line.rsplit(" ", 1)[1])
                elif line.startswith("vllm:time_to_first_token_seconds_count"):
                    count += float(line.rsplit(" ", 1)[1])
    return total, count


async def closed_loop(urls: list[str], concurrency: int, duration: float, max_tokens: int,
                      stream: bool) -> tuple[int, int]:
    done = tokens = 0
    end = time.monotonic() + duration

    async def worker(i: int) -> None:
        nonlocal done, tokens
        url = urls[i % len(urls)]
        while time.monotonic() < end:
            if stream:
                sample = Sample(0.0)
                await stream_one(url, "capacity test", max_tokens, sample)
                tokens += len(sample.tokens)
            else:
                chunks: list[bytes] = []
                await raw_post(url, {"prompt": "capacity test", "max_tokens": max_tokens}, chunks.append)
                body = b"".join(chunks).split(b"\r\n\r\n", 1)[1]
                tokens += json.loads(body)["usage"]["completion_tokens"]
            done += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done, tokens


def capacity(args: argparse.Namespace, stream: bool, max_tokens: int) -> dict[str, float]:
    # a real TPOT so that every token is its own SSE write, as with a real engine
    proc, urls = start_fleet(args.capacity_engines, ["--fixed-ttft-ms", "5", "--fixed-tpot-ms", str(args.capacity_tpot_ms)],
                             args.server_core)
    try:
        cpu0, me0, wall0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid()), time.perf_counter()
        done, tokens = asyncio.run(closed_loop(urls, args.concurrency, args.duration, max_tokens, stream))
        cpu, wall = cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
        client_cpu = cpu_seconds(os.getpid()) - me0
    finally:
        stop(proc)
    return {"stream": stream, "max_tokens": max_tokens, "requests": done, "server_cpu_s": cpu, "wall_s": wall,
            "client_cpu_util": client_cpu / wall,
            "req_per_s": done / wall, "tokens_per_s": tokens / wall,
            "req_per_core_s": done / cpu, "tokens_per_core_s": tokens / cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,8,16,32,64,96,128")
    ap.add_argument("--profile", default="llama-3.1-8b-h100")
    ap.add_argument("--rate", type=float, default=1.0, help="requests/s per engine")
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--prompt-words", type=int, default=2000)
    ap.add_argument("--output", type=int, default=128)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--capacity-engines", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--capacity-tpot-ms", type=float, default=5.0)
    ap.add_argument("--skip-capacity", action="store_true")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate cores")
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness for this benchmark and its server (negative needs root): on a shared "
                         "machine, shows the simulator's fidelity when it is not kept waiting for a CPU")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--published", action="store_true",
                    help="only print published vLLM figures beside the cost model's (pure, no servers)")
    args = ap.parse_args()
    if args.published:
        from kubellm.sim.calibration import markdown_table

        print(markdown_table())
        return
    if args.nice:
        os.nice(args.nice)  # inherited by the server subprocess
    cores = sorted(os.sched_getaffinity(0))
    args.server_core = cores[0] if len(cores) > 1 and not args.no_pin else None
    if args.server_core is not None:
        os.sched_setaffinity(0, set(cores[1:]))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results: dict[str, object] = {"cores": len(cores), "profile": args.profile, "rate_per_engine": args.rate,
                                  "prompt_words": args.prompt_words, "output_tokens": args.output}
    rows = []
    print(f"{'engines':>7} {'reqs':>5} {'srv/cli cpu':>11} {'TTFT meas/model ms':>20} {'err':>7} {'engine-side':>11} "
          f"{'TPOT meas/model ms':>20} {'err':>7} | median err TTFT TPOT | TTFT p90 err")
    for n in (int(x) for x in args.sizes.split(",")):
        r = fidelity(n, args)
        rows.append(r)
        print(f"{n:>7} {r['requests']:>5} {r['server_cpu_util']:>5.2f}/{r['client_cpu_util']:<5.2f} "
              f"{r['ttft_measured_ms']:>9.2f}/{r['ttft_model_ms']:<9.2f} {r['ttft_err']:>+7.1%} "
              f"{r['ttft_engine_side_ms']:>11.2f} "
              f"{r['tpot_measured_ms']:>9.2f}/{r['tpot_model_ms']:<9.2f} {r['tpot_err']:>+7.1%} | "
              f"{r['ttft_median_err']:>+7.1%} {r['tpot_median_err']:>+7.1%} | {r['ttft_p90_err']:>+7.1%}", flush=True)
    results["fidelity"] = rows
    for kind in ("mean", "median"):
        results[f"largest_faithful_fleet_{kind}"] = largest_faithful_fleet(rows, args.tolerance, kind)
        print(f"largest fleet whose {kind} TTFT and TPOT are within {args.tolerance:.0%} of the model "
              f"(as are those of every smaller size measured): "
              f"{results[f'largest_faithful_fleet_{kind}']} engines")
    if not args.skip_capacity:
        cap = [capacity(args, True, 64), capacity(args, False, 16)]
        results["capacity"] = cap
        for c in cap:
            kind = "streamed" if c["stream"] else "non-streamed"
            print(f"capacity ({kind}, {c['max_tokens']} tokens/request): {c['req_per_s']:.0f} req/s, "
                  f"{c['tokens_per_s']:.0f} tokens/s at {c['server_cpu_s'] / c['wall_s']:.2f} server cores "
                  f"({c['client_cpu_util']:.2f} client); "
                  f"per server core-second: {c['req_per_core_s']:.0f} req, {c['tokens_per_core_s']:.0f} tokens")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
