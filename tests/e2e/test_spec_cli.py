"""`kubellm validate` and `kubellm schema` as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def kubellm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args], capture_output=True, text=True, cwd=ROOT)


def test_validate_accepts_the_quickstart() -> None:
    result = kubellm("validate", "examples/quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid LLMService 'quickstart'" in result.stdout


def test_validate_reports_each_problem_with_path_and_hint_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n"
        "spec:\n  model: {uri: 'hf://a/b'}\n  engine: {tensorParallelSize: 4, typo: 1}\n"
    )
    result = kubellm("validate", str(bad))
    assert result.returncode == 2
    assert "spec.engine.typo" in result.stderr and "hint:" in result.stderr
    assert result.stdout == ""


def test_validate_warns_about_a_cache_that_replicas_cannot_share(tmp_path: Path) -> None:
    spec = tmp_path / "rwo.yaml"
    spec.write_text(
        "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n"
        "spec:\n  model: {uri: 'hf://a/b'}\n  scaling: {minReplicas: 2}\n"
    )
    result = kubellm("validate", str(spec))
    assert result.returncode == 0
    assert "warning: spec.cache.accessMode" in result.stderr


def test_validate_gates_image_volumes_on_target_version() -> None:
    assert kubellm("validate", "examples/oci-image-volume.yaml", "--target-version", "1.30").returncode == 2
    assert kubellm("validate", "examples/oci-image-volume.yaml", "--target-version", "1.31").returncode == 0


def test_validate_refuses_a_malformed_target_version() -> None:
    result = kubellm("validate", "examples/quickstart.yaml", "--target-version", "one.thirty")
    assert result.returncode == 2 and "1.31" in result.stderr and "Traceback" not in result.stderr


def test_validate_reports_a_missing_file_without_a_traceback() -> None:
    result = kubellm("validate", "examples/does-not-exist.yaml")
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_schema_prints_json_schema_and_crd() -> None:
    schema = json.loads(kubellm("schema").stdout)
    assert "spec" in schema["properties"]
    crd = yaml.safe_load(kubellm("schema", "--crd").stdout)
    assert crd["kind"] == "CustomResourceDefinition" and crd["metadata"]["name"] == "llmservices.kubellm.dev"
