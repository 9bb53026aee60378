"""Helpers shared by the pull integration tests (imported as `pull_testkit`; conftest puts
this folder on sys.path because pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
REPO = HERE.parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, ok: tuple[int, ...] = (200, 400, 403, 404)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def start_announcing(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Run the stand-in *script* (in this folder) with *args*; (process, base URL) once it
    prints "PORT <n>"."""
    proc = subprocess.Popen([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        stop(proc)
        raise RuntimeError(f"{script} did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class HfStandin:
    url: str
    root: Path

    def add_repo(self, repo_id: str, files: dict[str, bytes], **meta: Any) -> str:
        """Create a repo with *files*; returns its commit sha."""
        base = self.root / repo_id
        shutil.rmtree(base, ignore_errors=True)
        for name, data in files.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_bytes(data)
        repos_path = self.root / "repos.json"
        repos = json.loads(repos_path.read_text()) if repos_path.exists() else {}
        sha = meta.pop("sha", f"{abs(hash(repo_id)):040x}"[:40])
        repos[repo_id] = {"sha": sha, "refs": ["main"], **meta}
        repos_path.write_text(json.dumps(repos))
        return sha

    def bytes_served(self, reset: bool = False) -> int:
        response = httpx.request("POST" if reset else "GET", f"{self.url}/_stats")
        return int(response.json()["bytes"])


def start_hf_standin(root: Path, throttle: float = 0.0) -> tuple[subprocess.Popen[str], HfStandin]:
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE / "hf_standin.py"), str(root), "--throttle", str(throttle)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        stop(proc)
        raise RuntimeError(f"hf stand-in did not start: {line!r}")
    return proc, HfStandin(f"http://127.0.0.1:{line.split()[1]}", root)


def write_safetensors(path: Path, n_floats: int, seed: int = 0) -> bytes:
    """A valid safetensors file holding one F32 tensor of *n_floats* random values."""
    body = os.urandom(n_floats * 4) if seed == 0 else bytes((i * 7 + seed) % 251 for i in range(n_floats * 4))
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, n_floats * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    data = len(header).to_bytes(8, "little") + header + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def safetensors_bytes(n_floats: int) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, n_floats * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + os.urandom(n_floats * 4)


class StallingProxy:
    """A TCP proxy on loopback in front of a real server that forwards the first
    *stall_after* response bytes (all connections together) and then nothing more, holding
    connections open: a network that stops delivering in the middle of a download (small
    API responses before that pass untouched)."""

    def __init__(self, upstream: str, stall_after: int) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream, self._left = (host, int(port)), stall_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while block := source.recv(65536):
                if counted:
                    with self._lock:
                        allowed, self._left = min(len(block), self._left), max(0, self._left - len(block))
                    if allowed < len(block):
                        sink.sendall(block[:allowed])
                        self._closing.wait()  # stall: keep the connection open, send nothing
                        return
                sink.sendall(block)
        except OSError:
            return

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()
