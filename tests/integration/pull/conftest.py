"""Real servers on loopback for the pull integration tests, each started here and killed after.

- moto's standalone S3 server (`moto_server`), a real S3 API implementation;
- MinIO, built from its Go module by scripts/setup/pull.sh, a second S3 implementation;
- the distribution registry (Debian `docker-registry`) with a temp config, artifacts pushed by `oras`;
- Azurite (npm), Microsoft's Azure Storage emulator, when scripts/setup/pull.sh installed it;
- hf_standin.py: a STAND-IN for the Hugging Face Hub (no internet here), driven by huggingface_hub.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pull_testkit import REPO, HERE, HfStandin, free_port, start_hf_standin, stop, wait_http  # noqa: E402


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, root dir) of static_server.py: aiohttp static files with Range, plus /stall/."""
    root = tmp_path_factory.mktemp("www")
    cmd = [sys.executable, str(HERE / "static_server.py"), str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{line.split()[1]}", root
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def hf_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HfStandin]:
    proc, hub = start_hf_standin(tmp_path_factory.mktemp("hub"))
    yield hub
    stop(proc)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    # this interpreter's own first: its moto has the test extras (crc32c for correct CRC32C)
    venv_exe = Path(sys.executable).parent / "moto_server"
    exe = str(venv_exe) if venv_exe.exists() else shutil.which("moto_server") or "moto_server"
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def minio_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = REPO / ".tools/bin/minio"
    if not exe.exists():
        pytest.fail("MinIO is not built: run scripts/setup/pull.sh")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path_factory.mktemp("minio-home")), "MINIO_BROWSER": "off",
           "MINIO_ROOT_USER": "testing", "MINIO_ROOT_PASSWORD": "testing-secret"}  # fmt: skip
    data = tmp_path_factory.mktemp("minio-data")
    cmd = [str(exe), "server", str(data), "--address", f"127.0.0.1:{port}", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/minio/health/ready", timeout=60)
        yield url
    finally:
        stop(proc)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return s3_endpoint


@pytest.fixture(scope="module")
def registry_with_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(address, storage root) of a distribution registry on loopback."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip("docker-registry is not installed: run scripts/setup/pull.sh")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{root / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/")
        yield f"127.0.0.1:{port}", root / "data"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def registry(registry_with_root: tuple[str, Path]) -> str:
    return registry_with_root[0]


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = REPO / ".tools/azurite/node_modules/.bin/azurite-blob"
    if not exe.exists():
        pytest.skip("azurite is not installed: run scripts/setup/pull.sh")
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    cmd = [str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data), "--silent", "--skipApiVersionCheck"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    account = "devstoreaccount1"
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    conn = f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/{account};"
    try:
        wait_http(f"http://127.0.0.1:{port}/{account}?comp=list", timeout=90, ok=tuple(range(100, 600)))  # any answer: it listens
        yield conn
    finally:
        stop(proc)


