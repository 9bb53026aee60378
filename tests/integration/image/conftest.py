"""The images scripts/setup/image.sh builds (scripts/image/build.sh), read as OCI archives.

The session fixture runs the build once: with the tree unchanged since scripts/setup ran,
the content-hash stamp makes that a reuse of the archive in seconds, not a rebuild.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / ".tools" / "images"
BUILD_TIMEOUT = 1800  # a cold llama.cpp build compiles for minutes on two cores


@dataclass(frozen=True)
class OciArchive:
    """One image in an oci-archive: its index entry, manifest, config and layer blobs."""

    path: Path

    def blob(self, digest: str) -> bytes:
        with tarfile.open(self.path) as tar:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return member.read()

    def index(self) -> dict[str, Any]:
        with tarfile.open(self.path) as tar:
            member = tar.extractfile("index.json")
            assert member is not None
            return dict(json.load(member))

    def descriptor(self) -> dict[str, Any]:
        (entry,) = self.index()["manifests"]
        return dict(entry)

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.blob(self.descriptor()["digest"])))

    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.blob(self.manifest()["config"]["digest"])))

    def layer_paths(self) -> list[Path]:
        """Where each layer blob lies in an extracted copy (see ``extract``)."""
        return [Path("blobs/sha256") / layer["digest"].removeprefix("sha256:") for layer in self.manifest()["layers"]]

    def extract(self, into: Path) -> Path:
        with tarfile.open(self.path) as tar:
            tar.extractall(into, filter="tar")
        return into


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(name: str) -> OciArchive:
    done = subprocess.run([str(ROOT / "scripts/image/build.sh"), name], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return OciArchive(IMAGES / f"{name}.oci.tar")


@pytest.fixture(scope="session")
def kubellm_image() -> OciArchive:
    return build("kubellm")


@pytest.fixture(scope="session")
def llamacpp_image() -> OciArchive:
    return build("llamacpp")


@pytest.fixture(scope="session")
def kubellm_layer(kubellm_image: OciArchive, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kubellm image's one layer, gzipped tar, extracted from its archive."""
    out = kubellm_image.extract(tmp_path_factory.mktemp("kubellm-oci"))
    (layer,) = kubellm_image.layer_paths()
    return out / layer
