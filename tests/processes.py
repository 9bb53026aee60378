"""kubellm commands run as the user runs them, in a child process, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

KUBELLM = [sys.executable, "-m", "kubellm.cli.main"]
OUTPUT: list[str] = []  # every line the processes printed (for a failing test's message)


def start(args: list[str], marker: str, count: int = 1) -> tuple[subprocess.Popen[str], list[str]]:
    """``kubellm ARGS`` until it has printed *count* lines containing *marker*; returns the
    process and each such line's last word (the URL it serves). Its later output is read on
    a thread, so its logging never blocks on a full pipe."""
    proc = subprocess.Popen(KUBELLM + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    urls: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        OUTPUT.append(line)
        if marker in line:
            urls.append(line.strip().split()[-1])
            if len(urls) == count:
                threading.Thread(target=_drain, args=(proc,), daemon=True).start()
                return proc, urls
    raise AssertionError(f"{args[0]} exited with {proc.wait()} before printing {marker!r}")


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    OUTPUT.extend(proc.stdout)


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after *timeout* seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
