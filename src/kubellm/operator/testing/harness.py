"""Helpers for tests and benchmarks that drive the operator on a ``ControlPlane``: the CLI as
a user types it, the operator as a child process, polling with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kubellm.operator.testing.controlplane import ControlPlane

KUBELLM = [sys.executable, "-m", "kubellm.cli.main"]


def kubellm(plane: ControlPlane, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user types it, against *plane*."""
    result = subprocess.run(
        [*KUBELLM, *args], env=plane.env(), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubellm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class OperatorProcess:
    """`kubellm operator` as a child process, logging to a file."""

    def __init__(
        self, plane: ControlPlane, log: Path, identity: str, *extra: str,
        kubeconfig: Path | None = None, lease_namespace: str = "default", resync: float = 1,
        lease_seconds: int = 15,
    ) -> None:
        # 15 s, not less: a lease not renewed in time makes the operator exit, and on a busy
        # two-core CI machine a starved event loop can miss a 5 s renewal.
        self.lease_seconds = lease_seconds
        self.plane, self.log, self.identity, self.extra = plane, log, identity, extra
        self.kubeconfig, self.lease_namespace, self.resync = kubeconfig, lease_namespace, resync
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        handle = self.log.open("ab")
        args = ["operator", f"--resync={self.resync}", f"--lease-namespace={self.lease_namespace}", f"--lease-seconds={self.lease_seconds}",
                f"--identity={self.identity}"]
        self.popen = subprocess.Popen(
            [*KUBELLM, *args, *self.extra], env=self.plane.env(self.kubeconfig), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye (what a node failure or OOM does)."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def fresh_namespace(plane: ControlPlane, prefix: str, labels: dict[str, str] | None = None) -> Iterator[str]:
    """A new namespace ``<prefix>-<random>``, deleted on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    with plane.http() as client:
        client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}).raise_for_status()
    try:
        yield name
    finally:
        with plane.http() as client:
            client.delete(f"/api/v1/namespaces/{name}")


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """Poll *check* until it returns something truthy; fail naming *what*."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def get_json(client: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params=params)
    response.raise_for_status()
    return dict(response.json())
