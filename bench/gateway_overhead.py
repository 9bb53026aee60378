"""The gateway's data-path cost, side by side: direct, vllm-router, kubellm (1 and N workers).

An instant engine (a raw asyncio protocol on uvloop in its own process: every POST gets the
same 1-token completion, every GET a 200, no parsing beyond the HTTP framing) is reached
directly, through the Rust ``vllm-router`` (round robin) and through ``kubellm gateway``
with ``--workers 1`` and ``--workers N`` (N = CPU cores by default). ``wrk`` (Debian
package) drives each with the same POST of a 1-token ``/v1/completions`` request:

- latency at one connection: wrk's mean and p50/p99, and the added mean/p50 over direct;
- saturation at 64 connections: requests per second, and the CPU time the target's
  processes (all threads, workers included; the engine's own for "direct") used per request
  meanwhile, from /proc: unlike throughput, CPU per request does not depend on how much of the
  machine other jobs take.

Targets are measured in rounds (direct, vllm-router, kubellm, kubellm xN, then again) so
drift on a shared machine hits all alike; the medians over rounds are printed with ratios.

    .venv/bin/python bench/gateway_overhead.py [--rounds 3] [--seconds 5] [--workers N] [--json out.json]
        [--also-server aiohttp]

Needs ``wrk`` (``apt-get install wrk``) and ``scripts/setup/gateway.sh`` (vllm-router).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_routing import KUBELLM, MODEL, free_port, process, vllm_router  # noqa: E402

BODY = json.dumps({"model": MODEL, "prompt": "hello", "max_tokens": 1})
ANSWER = json.dumps({"id": "cmpl-1", "object": "text_completion", "created": 0, "model": MODEL,
                     "choices": [{"index": 0, "text": "x", "finish_reason": "length", "logprobs": None}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()


# -- the instant engine ---------------------------------------------------------------------
class _Instant(asyncio.Protocol):
    """HTTP/1.1 keep-alive with Content-Length bodies only: enough for wrk, the gateways and the router."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            m = re.search(rb"content-length:\s*(\d+)", head)
            size = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + size:
                break
            self.buf = self.buf[end + 4 + size:]
            body = ANSWER if head.startswith(b"post") else b"{}"
            out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
        if out:
            self.t.write(b"".join(out))  # type: ignore[attr-defined]


def _serve_instant(port: int) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Instant, "127.0.0.1", port, backlog=1024)
        print(f"instant engine on http://127.0.0.1:{port}", flush=True)
        await server.serve_forever()

    uvloop.run(main())


@contextlib.contextmanager
def instant_engine() -> Iterator[str]:
    port = free_port()
    with process([sys.executable, __file__, "--serve-instant", str(port)], "instant engine on") as lines:
        yield lines[0].split()[-1]


@contextlib.contextmanager
def kubellm(engine: str, workers: int, server: str | None = None) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gateway.yaml"
        cfg.write_text(yaml.safe_dump({"models": [{"name": MODEL, "endpoints": [engine]}], "accessLog": False}))
        cmd = KUBELLM + ["gateway", "--config", str(cfg), "--port", str(free_port()), "--workers", str(workers),
                         "--log-level", "warning"] + (["--server", server] if server else [])
        with process(cmd, "listening on http://") as lines:
            yield lines[0].split()[-1]


# -- wrk ----------------------------------------------------------------------------------------
@dataclass
class Wrk:
    rps: float
    mean_us: float
    p50_us: float
    p99_us: float
    cpu_us: float = 0.0  # CPU time of the target's processes per request


def _children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in listed] + [g for c in listed for g in _children(int(c))]


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for row in handle.read().splitlines()[1:]:
                f = row.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f[9])
    return inodes


def serving_pids(url: str) -> list[int]:
    """The processes listening on *url*'s port (every worker; vllm-router retitles itself, so
    its command line cannot be used), and their descendants."""
    wanted = {f"socket:[{i}]" for i in _listening_inodes(int(url.rsplit(":", 1)[1]))}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                roots.append(int(entry.name))
    return roots + [c for r in roots for c in _children(r)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (every thread of the process)
    return total / os.sysconf("SC_CLK_TCK")


def _us(text: str) -> float:
    """wrk's duration (``812.00us``, ``1.20ms``, ``2.00s``, ``1.05m``) in microseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"wrk printed a duration this script does not read: {text!r}")
    return float(match.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 6e7}[match.group(2)]


def wrk(url: str, connections: int, seconds: float, script: Path) -> Wrk:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
                          url + "/v1/completions"], capture_output=True, text=True, check=True).stdout
    mean = re.search(r"Latency\s+(\S+)", out)
    p50, p99 = re.search(r"^\s+50%\s+(\S+)", out, re.M), re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not (mean and p50 and p99 and rps) or non2xx:
        raise RuntimeError(f"wrk against {url}: {out}")
    return Wrk(float(rps.group(1)), _us(mean.group(1)), _us(p50.group(1)), _us(p99.group(1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--also-server", default="", help="also kubellm (1 worker) on these --server values, e.g. aiohttp")
    ap.add_argument("--serve-instant", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_instant is not None:
        return _serve_instant(args.serve_instant)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        script, engine, targets = baseline(stack, Path(tmp))
        targets.update({"kubellm": stack.enter_context(kubellm(engine, 1)),
                        f"kubellm x{args.workers}": stack.enter_context(kubellm(engine, args.workers))})
        for server in filter(None, args.also_server.split(",")):
            targets[f"kubellm {server}"] = stack.enter_context(kubellm(engine, 1, server))
        one, many = measure(targets, args, script)
    report(one, many, args)


def post_script(directory: Path) -> Path:
    """A wrk script in *directory* that POSTs the completion :data:`BODY`."""
    script = directory / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    return script


def baseline(stack: contextlib.ExitStack, tmp: Path) -> tuple[Path, str, dict[str, str]]:
    """What every comparison starts from: the wrk script, the instant engine, and the targets
    reaching it directly and through vllm-router (round robin), closed with *stack*."""
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    engine = stack.enter_context(instant_engine())
    targets = {"direct": engine, "vllm-router": stack.enter_context(vllm_router([engine], "round_robin"))}
    return post_script(tmp), engine, targets


def measure(targets: dict[str, str], args: argparse.Namespace,
            script: Path) -> tuple[dict[str, list[Wrk]], dict[str, list[Wrk]]]:
    """Rounds over *targets* (name -> URL), interleaved: wrk at 1 connection, then at
    ``args.connections`` with the CPU seconds its serving processes used per request."""
    one: dict[str, list[Wrk]] = {name: [] for name in targets}
    many: dict[str, list[Wrk]] = {name: [] for name in targets}
    for url in targets.values():  # warm-up: connections, caches
        wrk(url, 4, 1, script)
    pids = {name: serving_pids(url) for name, url in targets.items()}
    for _ in range(args.rounds):
        for name, url in targets.items():
            one[name].append(wrk(url, 1, args.seconds, script))
            before = cpu_seconds(pids[name])
            run = wrk(url, args.connections, args.seconds, script)
            run.cpu_us = (cpu_seconds(pids[name]) - before) / max(1.0, run.rps * args.seconds) * 1e6
            many[name].append(run)
    return one, many


def _median(runs: list[Wrk], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def report(one: dict[str, list[Wrk]], many: dict[str, list[Wrk]], args: argparse.Namespace) -> None:
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[0]
    print(f"{args.rounds} rounds of {args.seconds:g} s per target; {os.cpu_count()} cores; load average {load}")
    base = _median(one["direct"], "mean_us")
    base50 = _median(one["direct"], "p50_us")
    rust_added = _median(one["vllm-router"], "mean_us") - base
    rust_added50 = _median(one["vllm-router"], "p50_us") - base50
    rust_rps = _median(many["vllm-router"], "rps")
    rust_cpu = _median(many["vllm-router"], "cpu_us")
    rows = {}
    for name in one:
        mean, p50, p99 = (_median(one[name], f) for f in ("mean_us", "p50_us", "p99_us"))
        rps = _median(many[name], "rps")
        cpu = _median(many[name], "cpu_us")
        added = mean - base
        rows[name] = {"mean_us": mean, "p50_us": p50, "p99_us": p99, "added_mean_us": added,
                      "added_p50_us": p50 - base50, f"rps_{args.connections}": rps, "cpu_us_per_request": cpu,
                      "runs_1": [asdict(r) for r in one[name]], f"runs_{args.connections}": [asdict(r) for r in many[name]]}
        ratio = "" if name == "direct" or min(rust_added, rust_added50) <= 0 else (
            f" ({added / rust_added:.2f}x / {(p50 - base50) / rust_added50:.2f}x vllm-router's)")
        print(f"{name:>12}: 1 conn mean {mean:6.0f} us p50 {p50:6.0f} p99 {p99:6.0f}; added mean {added:+5.0f} us, "
              f"p50 {p50 - base50:+5.0f} us{ratio}; {args.connections} conns {rps:7.0f} req/s "
              f"({rps / rust_rps:.2f}x vllm-router), {cpu:.0f} us CPU per request ({cpu / rust_cpu:.2f}x vllm-router's)")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "rounds": args.rounds, "seconds": args.seconds,
                                         "targets": rows}, indent=2))


if __name__ == "__main__":
    main()
