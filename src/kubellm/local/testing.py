"""Run ``kubellm up`` as a user would, from tests: a subprocess, its URLs, its children.

Like ``kopf.testing.KopfRunner``: public so other components' tests can put a real local
service behind what they test::

    with UpProcess(["examples/quickstart.yaml", "--port", "0"]) as up:
        up.base_url            # "http://127.0.0.1:PORT/v1", once ready
        up.engine_ports        # ports of the replicas started so far
        up.descendants()       # live pids under the kubellm process
    # leaving the block sends SIGTERM and waits for the exit
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

_READY = re.compile(r"OpenAI base URL: (http://\S+/v1)")
_REPLICA = re.compile(r"replica \d+ starting on http://[\d.]+:(\d+)")


def kubellm_executable() -> str:
    """The ``kubellm`` script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "kubellm"
    return str(candidate) if candidate.exists() else "kubellm"


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants_of(root: int) -> set[int]:
    """Live processes whose ancestry leads to *root* (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


class UpProcess:
    def __init__(self, args: list[str], ready_timeout: float = 90.0, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        """*command* replaces ``kubellm up`` (a script that ends in it, such as the README's)."""
        self.command = command if command is not None else [kubellm_executable(), "up"]
        self.args = args
        self.ready_timeout = ready_timeout
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self.base_url: str | None = None
        self._changed = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> UpProcess:
        self.proc = subprocess.Popen([*self.command, *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=self.env)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda: self.base_url is not None, self.ready_timeout, "the ready line")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                match = _READY.search(line)
                if match:
                    self.base_url = match.group(1)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def engine_ports(self) -> list[int]:
        return [int(m.group(1)) for line in self.lines if (m := _REPLICA.search(line))]

    def wait_for(self, condition: object, timeout: float, what: str) -> None:
        """Wait until *condition()* holds; fail with the output so far if it does not."""
        assert callable(condition) and self.proc is not None
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                if self.proc.poll() is not None and not condition():
                    raise AssertionError(f"kubellm up exited ({self.proc.returncode}) before {what}:\n{self.output}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {what} after {timeout:g}s:\n{self.output}")
                self._changed.wait(0.2)

    def descendants(self) -> set[int]:
        assert self.proc is not None
        return descendants_of(self.proc.pid)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send *sig* and wait for the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)
