"""A replica that dies is replaced; engines listen on loopback only, whatever --host says."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import openai
import pytest

from kubellm.local.testing import UpProcess, pid_alive

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"


@pytest.mark.timeout(120)
def test_a_killed_replica_is_replaced_and_requests_succeed_again(tmp_path: Path) -> None:
    with UpProcess([str(QUICKSTART), "--port", "0", "--cache-dir", str(tmp_path), "--no-live", "--tick", "0.5"]) as up:
        assert up.base_url is not None
        (victim,) = up.descendants()
        os.kill(victim, signal.SIGKILL)
        up.wait_for(lambda: "replica 1 ready" in up.output, 60, "a replacement replica")
        assert "replica 0 exited unexpectedly" in up.output
        assert not pid_alive(victim) and len(up.descendants()) == 1
        client = openai.OpenAI(base_url=up.base_url, api_key="unused", max_retries=2)
        deadline = time.monotonic() + 20
        while True:  # the gateway's health check of the new replica may lag its readiness by a round
            try:
                reply = client.chat.completions.create(
                    model="tiny-chat", messages=[{"role": "user", "content": "still there?"}], max_tokens=3)
                break
            except openai.APIStatusError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert reply.choices[0].message.content
        assert up.stop() == 0


@pytest.mark.timeout(120)
def test_engines_bind_loopback_even_when_the_gateway_does_not(tmp_path: Path) -> None:
    with UpProcess([str(QUICKSTART), "--host", "0.0.0.0", "--port", "0", "--cache-dir", str(tmp_path),
                    "--no-live"]) as up:
        assert "warning: the gateway listens on 0.0.0.0 with no API keys" in up.output
        assert "replica 0 starting on http://127.0.0.1:" in up.output
        assert up.stop() == 0
