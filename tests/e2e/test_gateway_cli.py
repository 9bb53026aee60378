"""`kubellm gateway --config FILE` as a user runs it, in front of `kubellm sim` processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests import processes


@pytest.fixture
def engines() -> Iterator[list[str]]:
    proc, urls = processes.start(["sim", "--port", "0", "--replicas", "2", "--model", "m",
                                 "--fixed-ttft-ms", "5", "--fixed-tpot-ms", "10"], "serving http://", count=2)
    try:
        yield urls
    finally:
        processes.stop(proc)


def _gateway(tmp_path: Path, urls: list[str], **extra: object) -> tuple[subprocess.Popen[str], str]:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "m", "endpoints": urls}], **extra}))
    proc, found = processes.start(["gateway", "--config", str(cfg), "--port", "0", "--log-level", "warning"],
                                  "listening on http://")
    return proc, found[0]


def test_gateway_cli_serves_and_drains_on_sigterm(tmp_path: Path, engines: list[str]):
    proc, url = _gateway(tmp_path, engines, timeouts={"drainS": 20})
    try:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)

        async def stream() -> int:
            s = await client.completions.create(model="m", prompt="go", max_tokens=100, stream=True,
                                                stream_options={"include_usage": True})
            chunks = [c async for c in s]
            assert chunks[-2].choices[0].finish_reason == "length"
            return chunks[-1].usage.completion_tokens

        async def scenario() -> list[int]:
            tasks = [asyncio.ensure_future(stream()) for _ in range(6)]
            await asyncio.sleep(0.3)  # streams are running (100 tokens x 10 ms each)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            with pytest.raises(httpx.ConnectError):  # no longer accepting
                httpx.get(url + "/health", timeout=2)
            return await asyncio.gather(*tasks)

        counts = asyncio.run(scenario())
        assert counts == [100] * 6  # every in-flight stream finished whole
        assert proc.wait(15) == 0
    finally:
        processes.stop(proc)


def test_gateway_cli_rejects_a_bad_config(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("models: [{name: m, endpoints: [nope]}]\n")
    out = subprocess.run(processes.KUBELLM + ["gateway", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "models.0.endpoints.0" in out.stderr
