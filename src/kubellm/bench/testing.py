"""A simulator in a process of its own, for bench's tests and benchmark scripts.

Running ``kubellm sim`` out of process keeps the server's work off the load generator's
event loop, so what the generator measures is the server's latency plus its own overhead
and nothing else. The port is chosen by the simulator (``--port 0``) and read back from
its announcement, so parallel test runs never race for a port.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import httpx

from kubellm.bench.errors import BenchError


@contextlib.contextmanager
def sim_process(args: Sequence[str] = (), *, startup_s: float = 30.0) -> Iterator[str]:
    """Run ``kubellm sim --port 0 ARGS...``; yield its base URL once ``/health`` is 200."""
    command = [sys.executable, "-m", "kubellm.cli.main", "sim", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = _announced_url(process, startup_s)
        # Keep draining stderr: a full pipe would stall the simulator mid-benchmark.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        _wait_healthy(url, startup_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _announced_url(process: subprocess.Popen[str], startup_s: float) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + startup_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("serving "):
            return line.split()[1]
    raise BenchError("simulator did not start: " + "".join(seen[-10:]))


def _wait_healthy(url: str, startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchError(f"simulator at {url} never became healthy")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _line in process.stderr:
        pass
