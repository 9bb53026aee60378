"""A real model on a real engine: a GGUF the test writes itself, served by llama.cpp's
server behind the kubellm gateway, pulled into the local cache by `kubellm pull` from a
pvc:// URI (read from $KUBELLM_PVC_ROOT, as the loader Job does in a cluster).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from kubellm.local.metrics import parse_metrics
from kubellm.local.ports import port_is_free
from kubellm.local.testing import UpProcess, pid_alive

pytest.importorskip("llama_cpp.server.app", reason="llama.cpp is installed by scripts/setup/local.sh")
tinygguf = pytest.importorskip("kubellm.local.tinygguf")
pytest.importorskip("gguf")

SPEC = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: tiny-llama}
spec:
  model: {uri: "pvc://models/tiny.gguf", servedName: tiny-llama}
  engine:
    kind: llamacpp
    maxModelLen: 256
    llamacpp: {threads: 1}
"""


@pytest.mark.timeout(180)
def test_generated_gguf_streams_real_tokens_through_the_gateway(tmp_path: Path) -> None:
    claim = tmp_path / "pvc" / "models"
    claim.mkdir(parents=True)
    tinygguf.write_tiny_llama(claim / "tiny.gguf")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cache = tmp_path / "cache"
    args = [str(spec), "--port", "0", "--cache-dir", str(cache), "--no-live"]
    with UpProcess(args, ready_timeout=150, env={"KUBELLM_PVC_ROOT": str(tmp_path / "pvc")}) as up:
        assert up.base_url is not None
        assert list(cache.glob("models/*/tiny.gguf")) or list(cache.glob("models/tiny.gguf-*")), up.output
        client = openai.OpenAI(base_url=up.base_url, api_key="unused", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["tiny-llama"]

        stream = client.completions.create(model="tiny-llama", prompt="hello world", max_tokens=12, stream=True,
                                           temperature=0.8, seed=1)
        pieces = [c.choices[0].text for c in stream if c.choices]
        assert len(pieces) >= 2, pieces  # tokens arrive one by one, not as one body
        assert "".join(pieces).strip(), pieces

        # The wrapper adds /health and /metrics to llama-cpp-python's server (counting is
        # tested deterministically in tests/integration/local/test_local_llamacpp_wrapper.py).
        engine = f"http://127.0.0.1:{up.engine_ports[0]}"
        assert httpx.get(engine + "/health").status_code == 200
        assert parse_metrics(httpx.get(engine + "/metrics").text).running == 0

        reply = client.completions.create(model="tiny-llama", prompt="the cache", max_tokens=8, temperature=0)
        assert reply.usage is not None and reply.usage.completion_tokens > 0
        assert reply.usage.prompt_tokens >= 2  # llama.cpp tokenized the prompt with the GGUF's vocabulary

        children = up.descendants()
        ports = [int(up.base_url.rsplit(":", 1)[1].split("/")[0]), *up.engine_ports]
        assert up.stop() == 0
    assert not [p for p in children if pid_alive(p)]
    assert all(port_is_free(p) for p in ports)
