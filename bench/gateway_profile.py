"""Where the gateway's time per request goes: cProfile of `kubellm gateway` under load.

One fixed-latency simulated engine (0 ms), the gateway in front of it run under cProfile,
1-token completions from a separate process (sequential, then 32 at a time). Prints the
gateway's CPU time per request split by where it was spent (own functions' time summed by
package), and the top functions. A second gateway started and stopped with no requests is
profiled too and subtracted (imports, start-up), and the self time of ``asyncio.run`` (the
uvloop event loop in C, idle waiting included) is left out: what remains is the Python
(and C called from Python) that requests cost. cProfile's own overhead inflates every
figure; the split is what to read.

    .venv/bin/python bench/gateway_profile.py [--requests 3000] [--server aiohttp|fast]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_routing import KUBELLM, MODEL, process  # noqa: E402

GROUPS = (("kubellm.gateway", "/kubellm/gateway/"), ("aiohttp", "/aiohttp/"), ("multidict/yarl", "/multidict/"),
          ("multidict/yarl", "/yarl/"), ("prometheus_client", "/prometheus_client/"), ("json", "/json/"),
          ("asyncio", "/asyncio/"), ("opentelemetry", "/opentelemetry/"), ("logging", "/logging/"))


def _group(filename: str) -> str:
    for name, needle in GROUPS:
        if needle in filename:
            return name
    return "builtins/C" if filename.startswith("~") or filename == "" else "other Python"


async def _drive(base: str, n: int, concurrency: int) -> int:
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 1}
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def worker(k: int) -> None:
            nonlocal done
            for _ in range(k):
                async with s.post(base + "/v1/completions", json=body) as r:
                    await r.read()
                    done += r.status == 200
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return done


def _profile(engine: str, tmp: Path, requests: int, server: str = "aiohttp") -> tuple[pstats.Stats, int, float]:
    """Profile one gateway serving *requests* requests: (stats, requests served, wall seconds)."""
    cfg, prof = tmp / "gateway.yaml", tmp / f"gateway-{requests}.prof"
    cfg.write_text(yaml.safe_dump({"models": [{"name": MODEL, "endpoints": [engine]}], "accessLog": False,
                                   "timeouts": {"drainS": 0}}))
    gw_cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "kubellm.cli.main", "gateway", "--config",
              str(cfg), "--port", "0", "--log-level", "warning", "--server", server]
    proc = subprocess.Popen(gw_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    base = ""
    while not base:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"gateway exited ({proc.wait()})")
        if "listening on http://" in line:
            base = line.split()[-1]
    t0 = time.perf_counter()
    ok = 0
    if requests:
        ok = asyncio.run(_drive(base, requests // 2, 1)) + asyncio.run(_drive(base, requests // 2, 32))
    wall = time.perf_counter() - t0
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
    return pstats.Stats(str(prof)), ok, wall


def _by_group(stats: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = {}
    for (filename, _line, fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename.endswith("asyncio/runners.py") and fn == "run":
            continue  # the C event loop, idle time included
        out[_group(filename)] = out.get(_group(filename), 0.0) + tottime
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--server", choices=("aiohttp", "fast"), default="aiohttp", help="the gateway's HTTP server")
    args = ap.parse_args()
    engine_cmd = KUBELLM + ["sim", "--port", "0", "--model", MODEL, "--fixed-ttft-ms", "0", "--fixed-tpot-ms", "0"]
    with tempfile.TemporaryDirectory() as tmp, process(engine_cmd, "serving http://") as lines:
        engine = lines[0].split()[-1]
        idle, _, _ = _profile(engine, Path(tmp), 0, args.server)
        stats, ok, wall = _profile(engine, Path(tmp), args.requests, args.server)
    base = _by_group(idle)
    by_group = {k: max(0.0, v - base.get(k, 0.0)) for k, v in _by_group(stats).items()}
    total = sum(by_group.values())
    print(f"{ok} requests in {wall:.1f} s; gateway CPU under cProfile, start-up subtracted: "
          f"{total / ok * 1e6:.0f} us per request")
    for name, t in sorted(by_group.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<20} {t / ok * 1e6:7.1f} us  {t / total:6.1%}")
    stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
