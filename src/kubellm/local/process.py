"""One engine child process: started in its own process group, checked for readiness,
stopped with its whole group so no grandchild or bound port survives it.

On Linux the child also gets PR_SET_PDEATHSIG, so even if ``kubellm up`` is killed with
SIGKILL (no chance to clean up) the kernel sends the engine SIGTERM.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections import deque
from pathlib import Path

import httpx

from kubellm.local.engines import EngineLaunch
from kubellm.local.errors import EngineStartError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EngineProcess:
    """A running engine; ``url`` is its base URL (``http://host:port``)."""

    def __init__(self, launch: EngineLaunch, url: str, log_path: Path) -> None:
        self.launch = launch
        self.url = url
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def exited(self) -> bool:
        return self._proc is not None and self._proc.returncode is not None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.launch.argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                    env={**os.environ, **self.launch.env}, start_new_session=True, preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise EngineStartError(f"cannot run {self.launch.argv[0]}: {exc.strerror}") from exc

    async def wait_ready(self, client: httpx.AsyncClient, poll_s: float = 0.2) -> None:
        """Return once the readiness path answers 200; raise if the process dies or times out."""
        deadline = asyncio.get_running_loop().time() + self.launch.ready_timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if self.exited:
                raise EngineStartError(self._failure(f"exited with status {self._returncode()} before it was ready"))
            if await self._answers(client):
                return
            await asyncio.sleep(poll_s)
        raise EngineStartError(self._failure(f"not ready after {self.launch.ready_timeout_s:g} s"))

    async def _answers(self, client: httpx.AsyncClient) -> bool:
        try:
            response = await client.get(self.url + self.launch.ready_path, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it after *grace_s*; wait for the exit."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), grace_s)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await self._proc.wait()
        # The leader is gone; anything it forked into the group goes too.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is already empty

    def _returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def _failure(self, what: str) -> str:
        return f"engine {' '.join(self.launch.argv[:4])}... on {self.url} {what}; last log lines ({self.log_path}):\n" + (
            self.log_tail()
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except OSError:
            return "(no log)"
