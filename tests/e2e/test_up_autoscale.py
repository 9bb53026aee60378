"""Local autoscaling through `kubellm up`: real engine processes follow the load.

Load raises the process count to maxReplicas, idleness brings it back to minReplicas, and
with scaleToZero to no process at all, the gateway then holding the next request while a
replica starts; every request succeeds throughout.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai
import pytest

from kubellm.local.testing import UpProcess, pid_alive

SPEC = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {{name: scaling}}
spec:
  model: {{uri: "sim://tiny-chat"}}
  engine:
    kind: sim
    sim: {{profile: tiny, fixedTtftMs: 50, fixedTpotMs: 40}}
  scaling:
    minReplicas: 1
    maxReplicas: 3
    signal: runningRequests
    target: 2
    scaleToZero: {zero}
    idleSeconds: 3
    stabilization: {{scaleUpSeconds: 0, scaleDownSeconds: 2}}
"""


def _spec(tmp_path: Path, zero: bool) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(zero=str(zero).lower()))
    return [str(path), "--port", "0", "--cache-dir", str(tmp_path), "--no-live", "--tick", "0.5", "--drain", "10"]


async def _load(base_url: str, workers: int, until: float) -> list[str]:
    """Closed-loop streaming load; returns every reply (an exception fails the test)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    replies: list[str] = []

    async def worker() -> None:
        while time.monotonic() < until:
            stream = await client.chat.completions.create(
                model="tiny-chat", messages=[{"role": "user", "content": "go"}], max_tokens=25, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text, "an empty reply"
            replies.append(text)

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await client.close()
    return replies


def _engines(up: UpProcess) -> set[int]:
    return {p for p in up.descendants() if pid_alive(p)}


@pytest.mark.timeout(150)
def test_load_scales_processes_to_max_and_idleness_back_to_min(tmp_path: Path) -> None:
    with UpProcess(_spec(tmp_path, zero=False)) as up:
        assert up.base_url is not None
        assert len(_engines(up)) == 1
        peak = 0

        async def load_and_watch() -> list[str]:
            nonlocal peak
            task = asyncio.create_task(_load(up.base_url or "", workers=8, until=time.monotonic() + 15))
            while not task.done():
                peak = max(peak, len(_engines(up)))
                await asyncio.sleep(0.2)
            return task.result()

        replies = asyncio.run(load_and_watch())
        assert peak == 3, up.output  # maxReplicas, never more
        assert len(replies) > 20
        up.wait_for(lambda: len(_engines(up)) == 1, 40, "scale back down to minReplicas")
        assert "scale down" in up.output and "replica 2 ready" in up.output
        assert up.stop() == 0


@pytest.mark.timeout(150)
def test_idle_service_scales_to_zero_and_the_gateway_holds_the_next_request(tmp_path: Path) -> None:
    with UpProcess(_spec(tmp_path, zero=True)) as up:
        assert up.base_url is not None
        up.wait_for(lambda: not _engines(up), 30, "scale to zero")
        client = openai.OpenAI(base_url=up.base_url, api_key="unused", max_retries=0, timeout=60)
        started = time.monotonic()
        reply = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=4)
        assert reply.choices[0].message.content
        assert time.monotonic() - started > 0.5  # it waited for a process to start
        assert len(_engines(up)) == 1
        assert up.stop() == 0
