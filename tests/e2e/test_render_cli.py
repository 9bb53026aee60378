"""`kubellm render` as a user types it: stdout stream, -o directory, errors with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def kubellm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args], capture_output=True, text=True, cwd=ROOT)


def test_render_to_stdout_is_deterministic_and_ordered() -> None:
    first = kubellm("render", "examples/hf-autoscale.yaml")
    second = kubellm("render", "examples/hf-autoscale.yaml")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(first.stdout)]
    assert kinds[:2] == ["StorageClass", "ServiceAccount"]
    assert kinds.index("PersistentVolumeClaim") < kinds.index("Job") < kinds.index("Deployment") < kinds.index("ScaledObject")


def test_render_writes_one_file_per_object(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kubellm("render", "examples/quickstart.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.glob("[0-9][0-9]-*.yaml"))
    assert files[0].startswith("00-serviceaccount-quickstart")
    assert all(yaml.safe_load((out / f).read_text())["metadata"]["name"] for f in files)
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["resources"] == files
    # Rendering again after the spec changed removes files of objects no longer rendered.
    (out / "99-stale-object.yaml").write_text("kind: Stale\n")
    assert kubellm("render", "examples/quickstart.yaml", "-o", str(out)).returncode == 0
    assert not (out / "99-stale-object.yaml").exists()


def test_render_refuses_an_invalid_spec_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: x}\nspec: {model: {uri: 'ftp://x'}}\n")
    out = tmp_path / "out"
    result = kubellm("render", str(bad), "-o", str(out))
    assert result.returncode == 2
    assert "spec.model.uri" in result.stderr
    assert not out.exists()


def test_render_refuses_an_image_volume_before_1_31() -> None:
    result = kubellm("render", "examples/oci-image-volume.yaml", "--target-version", "1.30")
    assert result.returncode == 2 and "1.31" in result.stderr


def test_render_of_several_specs_emits_their_gateway_config_when_asked() -> None:
    specs = ("examples/quickstart.yaml", "examples/canary-gateway.yaml")
    plain = kubellm("render", *specs)
    with_gateway = kubellm("render", *specs, "--gateway-config")
    assert plain.returncode == 0 and with_gateway.returncode == 0, plain.stderr + with_gateway.stderr
    plain_docs = list(yaml.safe_load_all(plain.stdout))
    docs = list(yaml.safe_load_all(with_gateway.stdout))
    assert {d["metadata"]["labels"]["kubellm.dev/service"] for d in plain_docs if "kubellm.dev/service"
            in d["metadata"].get("labels", {})} == {"quickstart", "mistral-canary"}
    [configmap] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kubellm-gateway"]
    assert docs[:-1] == plain_docs
    models = [m["name"] for m in yaml.safe_load(configmap["data"]["gateway.yaml"])["models"]]
    assert "tiny-chat" in models and "mistral-7b-instruct-canary" in models
