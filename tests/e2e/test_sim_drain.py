"""`kubellm sim --drain-seconds`: after SIGTERM the engine keeps serving for the drain, with
/health at 503 and every response closing its connection (clients reconnect to where the
Service now points), then exits 0. What a rolling update on a real node needs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx

KUBELLM = [sys.executable, "-c", "from kubellm.cli.main import main; main()"]
CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_drains_then_exits() -> None:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*KUBELLM, "sim", "--port", str(port), "--model", "demo", "--fixed-ttft-ms", "1",
                             "--fixed-tpot-ms", "1", "--drain-seconds", "1.5"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert proc.poll() is None and time.monotonic() < deadline, "kubellm sim did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url) as client:
            assert client.post("/v1/chat/completions", json=CHAT).headers.get("connection") != "close"
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert client.get("/health").status_code == 503
            during = client.post("/v1/chat/completions", json=CHAT)
            assert during.status_code == 200 and during.headers["connection"] == "close"
        began = time.monotonic()
        assert proc.wait(15) == 0
        assert 0.5 < time.monotonic() - began + 0.3 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
