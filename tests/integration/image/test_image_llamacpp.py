"""kubellm's llama.cpp image: /app/llama-server takes the flags kubellm renders for a
llamacpp engine and serves a real (tiny, random-weight) GGUF model with llama-cpp-python's
OpenAI server, run from the image's root filesystem as the kubellm image is in
test_image_runs.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kubellm import __version__
from kubellm.local.tinygguf import write_tiny_llama

from .conftest import IMAGES, ROOT, OciArchive, free_port
from .test_image_runs import in_image

pytestmark = pytest.mark.timeout(1800)


def shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_server", ROOT / "scripts/image/llama_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("given", "passed"), [
    (["--model", "/m/x.gguf", "--alias", "chat", "--host", "0.0.0.0", "--port", "8000", "--metrics"],
     ["--model", "/m/x.gguf", "--model_alias", "chat", "--host", "0.0.0.0", "--port", "8000"]),
    (["--ctx-size", "4096", "--parallel", "4", "--threads", "4", "--n-gpu-layers", "0"],
     ["--n_ctx", "4096", "--n_threads", "4", "--n_gpu_layers", "0"]),
    (["--ctx-size=512", "--parallel=2", "--n_batch", "64"], ["--n_ctx=512", "--n_batch", "64"]),
])
def test_llama_server_flags_become_llama_cpp_python_s(given: list[str], passed: list[str]) -> None:
    assert shim().translate(given) == passed


@pytest.fixture(scope="session")
def llamacpp_rootfs(llamacpp_image: OciArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = llamacpp_image.extract(tmp_path_factory.mktemp("llamacpp-oci"))
    root = tmp_path_factory.mktemp("llamacpp-rootfs")
    for layer in llamacpp_image.layer_paths():
        with tarfile.open(out / layer, "r:gz") as tar:
            tar.extractall(root, filter="fully_trusted")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_archive_runs_app_llama_server_as_65532(llamacpp_image: OciArchive) -> None:
    assert (IMAGES / "llamacpp.ref").read_text().strip() == f"kubellm-llamacpp:{__version__}"
    run = llamacpp_image.config()["config"]
    assert run["User"] == "65532:65532" and run["Entrypoint"] == ["/app/llama-server"]
    sbom = json.loads((IMAGES / "llamacpp.cdx.json").read_text())
    assert any(c["purl"].startswith("pkg:pypi/llama-cpp-python@") for c in sbom["components"])


def test_the_rendered_flags_serve_a_gguf_model_from_the_image(llamacpp_rootfs: Path, llamacpp_image: OciArchive, tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    write_tiny_llama(model)
    port = free_port()
    flags = ["--model", "/tmp/tiny.gguf", "--alias", "tiny", "--host", "127.0.0.1", "--port", str(port), "--metrics",
             "--ctx-size", "256", "--parallel", "2", "--threads", "1", "--n-gpu-layers", "0"]
    command, env = in_image(llamacpp_rootfs, llamacpp_image, "/app/llama-server", *flags, files=(model,))
    engine = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert engine.poll() is None, engine.stdout.read() if engine.stdout else ""
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no /health within 120 s"
            time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", method="POST",
                                         data=json.dumps({"model": "tiny", "prompt": "hello", "max_tokens": 8}).encode(),
                                         headers={"Content-Type": "application/json"})
        reply = json.load(urllib.request.urlopen(request, timeout=60))
        assert reply["model"] == "tiny" and reply["usage"]["completion_tokens"] > 0
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "vllm:num_requests_running" in metrics
    finally:
        engine.terminate()
        engine.wait(timeout=30)
        if engine.stdout:
            engine.stdout.close()
