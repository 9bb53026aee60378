"""The kubellm image as scripts/image/build.sh writes it (docs/image.md): an oci-archive
with the right config, a root filesystem without build tools, and a valid CycloneDX SBOM
inside and beside it."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from kubellm import __version__

from .conftest import IMAGES, ROOT, OciArchive

pytestmark = pytest.mark.timeout(1800)
SBOM_IN_IMAGE = "usr/share/kubellm/sbom.cdx.json"
SITE = "opt/kubellm/lib/python3.11/site-packages"


@pytest.fixture(scope="session")
def members(kubellm_layer: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(kubellm_layer, "r:gz") as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def read_member(layer: Path, name: str) -> bytes:
    with tarfile.open(layer, "r:gz") as tar:
        member = tar.extractfile(f"./{name}")
        assert member is not None
        return member.read()


def test_the_archive_names_its_image_for_skopeo_and_containerd(kubellm_image: OciArchive) -> None:
    ref = f"kubellm:{__version__}"
    assert (IMAGES / "kubellm.ref").read_text().strip() == ref
    annotations = kubellm_image.descriptor()["annotations"]
    assert annotations["org.opencontainers.image.ref.name"] == ref
    assert annotations["io.containerd.image.name"] == f"docker.io/library/{ref}"
    assert kubellm_image.descriptor()["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_the_config_runs_kubellm_as_65532_with_the_oci_labels(kubellm_image: OciArchive) -> None:
    config = kubellm_image.config()
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    run = config["config"]
    assert run["User"] == "65532:65532"
    assert run["Entrypoint"] == ["/opt/kubellm/bin/kubellm"] and not run.get("Cmd")
    labels = run["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])


def test_every_path_the_image_writes_is_under_tmp(kubellm_image: OciArchive) -> None:
    """/tmp is an emptyDir in every pod kubellm renders: the root filesystem stays read-only."""
    env = dict(e.split("=", 1) for e in kubellm_image.config()["config"]["Env"])
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR", "HF_HOME"):
        assert env[var] == "/tmp" or env[var].startswith("/tmp/"), var
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_root_filesystem_has_kubellm_and_no_pip_compiler_or_apt(members: dict[str, tarfile.TarInfo]) -> None:
    assert "opt/kubellm/bin/kubellm" in members and SBOM_IN_IMAGE in members
    forbidden = re.compile(r"(^|/)s?bin/(pip[0-9.]*|apt|apt-get|gcc[-0-9.]*|g\+\+[-0-9.]*|cc|c\+\+|make|cmake)$"
                           r"|/site-packages/(pip|setuptools)/|^var/lib/apt/lists/.|^var/cache/apt/.")
    found = sorted(name for name in members if forbidden.search(name))
    assert found == []
    assert members["tmp"].mode & 0o1777 == 0o1777


def test_every_kubellm_module_is_compiled_ahead(members: dict[str, tarfile.TarInfo]) -> None:
    """The root filesystem is read-only at run time: bytecode not built now never is."""
    modules = [Path(n) for n in members if n.startswith(f"{SITE}/kubellm/") and n.endswith(".py")]
    assert len(modules) > 100
    missing = [m for m in modules if str(m.parent / "__pycache__" / f"{m.stem}.cpython-311.pyc") not in members]
    assert missing == []


def test_the_sbom_is_valid_cyclonedx_and_lists_what_the_image_holds(kubellm_layer: Path, members: dict[str, tarfile.TarInfo]) -> None:
    beside = (IMAGES / "kubellm.cdx.json").read_bytes()
    assert read_member(kubellm_layer, SBOM_IN_IMAGE) == beside
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(beside.decode())
    assert error is None, getattr(error, "data", error)
    sbom = json.loads(beside)
    purls = {c["purl"] for c in sbom["components"]}
    assert f"pkg:pypi/kubellm@{__version__}" in purls
    assert any(p.startswith("pkg:deb/debian/python3.11@") for p in purls)
    dists = {n.split("/")[-1] for n in members if re.fullmatch(rf"{SITE}/[^/]+\.dist-info", n)}
    assert len([p for p in purls if p.startswith("pkg:pypi/")]) == len(dists) > 50


def test_the_compressed_image_is_at_most_250_MB(kubellm_image: OciArchive) -> None:
    compressed = sum(layer["size"] for layer in kubellm_image.manifest()["layers"])
    assert compressed <= 250_000_000, f"{compressed / 1e6:.0f} MB"


def build_kubellm() -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([str(ROOT / "scripts/image/build.sh"), "kubellm"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started, done.stdout


def test_a_second_build_of_an_unchanged_tree_reuses_the_first(kubellm_image: OciArchive) -> None:
    build_kubellm()  # catches up with whatever changed in the tree since the fixture's build
    before = kubellm_image.path.stat().st_mtime_ns
    took, out = build_kubellm()
    assert "unchanged, reusing" in out
    assert kubellm_image.path.stat().st_mtime_ns == before
    assert took < 60, f"{took:.1f} s"
