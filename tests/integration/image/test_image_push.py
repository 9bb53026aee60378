"""`scripts/image/build.sh --push` (scripts/image/push.sh) against Debian's docker-registry,
the distribution registry, on loopback: the manifest read back is the archive's; an
unreachable registry, or one that refuses the push, leaves no tag."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, OciArchive, free_port

pytestmark = pytest.mark.timeout(1800)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Registry:
    address: str

    def get(self, path: str, accept: str = "application/json") -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(f"http://{self.address}{path}", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)


def start_registry(tmp_path: Path, read_only: bool) -> Iterator[Registry]:
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")},
                    "maintenance": {"readonly": {"enabled": read_only}}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (tmp_path / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    process = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    registry = Registry(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "docker-registry exited"
            try:
                if registry.get("/v2/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "docker-registry did not answer /v2/"
            time.sleep(0.1)
        yield registry
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    yield from start_registry(tmp_path, read_only=False)


@pytest.fixture
def read_only_registry(tmp_path: Path) -> Iterator[Registry]:
    yield from start_registry(tmp_path, read_only=True)


def push(destination: str, *, build: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBELLM_PUSH_TLS_VERIFY": "false"}
    if build:
        command = [str(ROOT / "scripts/image/build.sh"), "kubellm", "--push", destination]
    else:
        command = [str(ROOT / "scripts/image/push.sh"), str(ROOT / ".tools/images/kubellm.oci.tar"), destination]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_build_then_push_and_the_registry_serves_the_archive_s_manifest(kubellm_image: OciArchive, registry: Registry) -> None:
    done = push(f"{registry.address}/team/kubellm:0.1.0", build=True)
    assert done.returncode == 0, done.stderr
    status, body, headers = registry.get("/v2/team/kubellm/manifests/0.1.0", accept=OCI_MANIFEST)
    assert status == 200
    served, ours = json.loads(body), kubellm_image.manifest()
    assert served["config"]["digest"] == ours["config"]["digest"]
    assert [layer["digest"] for layer in served["layers"]] == [layer["digest"] for layer in ours["layers"]]
    status, config, _ = registry.get(f"/v2/team/kubellm/blobs/{ours['config']['digest']}")
    assert status == 200 and json.loads(config)["config"]["User"] == "65532:65532"


def test_an_unreachable_registry_is_named_and_nothing_is_pushed(kubellm_image: OciArchive) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = push(f"{address}/kubellm:0.1.0")
    assert done.returncode != 0
    assert f"registry {address} is unreachable" in done.stderr and "nothing was pushed" in done.stderr


def test_a_push_the_registry_refuses_leaves_no_tag(kubellm_image: OciArchive, read_only_registry: Registry) -> None:
    done = push(f"{read_only_registry.address}/kubellm:0.1.0")
    assert done.returncode != 0
    assert "pushing to" in done.stderr and "failed" in done.stderr
    assert read_only_registry.get("/v2/kubellm/manifests/0.1.0", accept=OCI_MANIFEST)[0] == 404
    assert json.loads(read_only_registry.get("/v2/_catalog")[1])["repositories"] == []


@pytest.mark.parametrize("destination", ["kubellm", "kubellm:0.1.0", "127.0.0.1:5000/kubellm"])
def test_a_destination_without_registry_repository_and_tag_is_refused(destination: str) -> None:
    done = push(destination)
    assert done.returncode != 0
    assert "is not REGISTRY/REPO:TAG" in done.stderr
