"""Benchmark of local mode: how fast `kubellm up` is ready, what the gateway adds, and
how long a request is held while a replica starts from zero. Prints figures, each beside
its baseline:

- ready: `kubellm up examples/quickstart.yaml` until the base URL is printed, against a
  bare `kubellm sim` until /health answers (the engine alone);
- request latency (non-streamed, 8 tokens, sim with fixed 5 ms TTFT/TPOT), p50/p99,
  through the gateway against the same engine directly;
- scale from zero: a request's latency when no replica runs, against one served warm.

    .venv/bin/python bench/local_up.py [--runs 3] [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kubellm.local.ports import free_port
from kubellm.local.testing import UpProcess

SPEC = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {{name: bench}}
spec:
  model: {{uri: "sim://tiny-chat"}}
  engine: {{kind: sim, sim: {{profile: tiny, fixedTtftMs: 5, fixedTpotMs: 5}}}}
  scaling: {{minReplicas: 1, maxReplicas: 1, scaleToZero: {zero}, idleSeconds: 1}}
"""
BODY = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def _spec(directory: Path, zero: bool) -> Path:
    path = directory / f"spec-{zero}.yaml"
    path.write_text(SPEC.format(zero=str(zero).lower()))
    return path


def time_up_ready(spec: Path, cache: Path) -> float:
    started = time.monotonic()
    with UpProcess([str(spec), "--port", "0", "--cache-dir", str(cache), "--no-live"]):
        return time.monotonic() - started


def time_sim_ready() -> float:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kubellm.cli.main", "sim", "--port", str(port), "--profile", "tiny"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()


def latencies(url: str, n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            started = time.monotonic()
            response = client.post(url + "/chat/completions", json=BODY)
            response.raise_for_status()
            out.append(time.monotonic() - started)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        warm, cold = _spec(directory, False), _spec(directory, True)
        up = [time_up_ready(warm, directory) for _ in range(args.runs)]
        bare = [time_sim_ready() for _ in range(args.runs)]
        print(f"ready: kubellm up {statistics.median(up):.2f} s, bare kubellm sim {statistics.median(bare):.2f} s "
              f"(ratio {statistics.median(up) / statistics.median(bare):.2f}; median of {args.runs})")
        with UpProcess([str(warm), "--port", "0", "--cache-dir", tmp, "--no-live"]) as proc:
            assert proc.base_url is not None
            engine = f"http://127.0.0.1:{proc.engine_ports[0]}/v1"
            latencies(proc.base_url, 20)  # warm both paths
            via = latencies(proc.base_url, args.requests)
            direct = latencies(engine, args.requests)
        print(f"request latency p50: gateway {pct(via, .5):.1f} ms, direct {pct(direct, .5):.1f} ms "
              f"(ratio {pct(via, .5) / pct(direct, .5):.2f}); p99: gateway {pct(via, .99):.1f} ms, "
              f"direct {pct(direct, .99):.1f} ms ({args.requests} sequential requests)")
        with UpProcess([str(cold), "--port", "0", "--cache-dir", tmp, "--no-live", "--tick", "0.5"]) as proc:
            assert proc.base_url is not None
            proc.wait_for(lambda: "replica 0 stopped" in proc.output, 30, "scale to zero")
            from_zero = latencies(proc.base_url, 1)[0]
            served_warm = statistics.median(latencies(proc.base_url, 20))
        print(f"scale from zero: first request {from_zero:.2f} s held and served, warm {served_warm * 1000:.1f} ms "
              f"(ratio {from_zero / served_warm:.0f})")


if __name__ == "__main__":
    main()
