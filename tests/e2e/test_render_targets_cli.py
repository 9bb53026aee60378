"""`kubellm render --target/--strict/--argocd` as a user types it: warnings on stderr,
--strict refuses with exit 2 before anything is written, bad flags are usage errors, and
--argocd writes the Application beside the directory it points Argo CD at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
REPO = "https://git.example.com/platform/llm.git"


def kubellm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args], capture_output=True, text=True, cwd=ROOT)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """stderr with rich's usage-error box and line wrapping undone."""
    return " ".join(result.stderr.replace("│", " ").split())


def test_kserve_target_prints_objects_and_warns_for_each_lost_field() -> None:
    result = kubellm("render", "examples/hf-autoscale.yaml", "--target", "kserve")
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds == ["ServiceAccount", "ClusterServingRuntime", "InferenceService"]
    assert "warning: llama-8b: spec.security.apiKeys: target kserve cannot express it" in result.stderr
    assert "spec.model.ignorePatterns: target kserve" in result.stderr


def test_strict_refuses_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kubellm("render", "examples/hf-autoscale.yaml", "--target", "kserve", "--strict", "-o", str(out))
    assert result.returncode == 2
    assert "--strict:" in result.stderr and "spec.security.apiKeys: target kserve cannot express it" in result.stderr
    assert not out.exists()


def test_a_mode_the_target_cannot_express_is_an_error() -> None:
    result = kubellm("render", "examples/disaggregated.yaml", "--target", "kserve")
    assert result.returncode == 2
    assert "spec.serving.mode: target kserve cannot express mode disaggregated" in result.stderr
    assert result.stdout == ""


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    unknown = kubellm("render", "examples/quickstart.yaml", "--target", "openshift")
    assert unknown.returncode == 2 and "'openshift' is not a target" in said(unknown)
    gateway = kubellm("render", "examples/quickstart.yaml", "--target", "kserve", "--gateway")
    assert gateway.returncode == 2 and "kubellm's gateway goes with --target kubernetes" in said(gateway)
    no_dir = kubellm("render", "examples/quickstart.yaml", "--argocd", REPO, "apps/llm")
    assert no_dir.returncode == 2 and "needs -o DIR" in said(no_dir)
    bad_repo = kubellm("render", "examples/quickstart.yaml", "--argocd", "not a url", "apps/llm", "-o", str(tmp_path / "o"))
    assert bad_repo.returncode == 2 and "is not a Git repository URL" in said(bad_repo)
    escape = kubellm("render", "examples/quickstart.yaml", "--argocd", REPO, "../elsewhere", "-o", str(tmp_path / "o"))
    assert escape.returncode == 2 and "must be a relative path" in said(escape)
    assert not (tmp_path / "o").exists()


def test_argocd_writes_the_application_and_waves_in_apply_order(tmp_path: Path) -> None:
    out = tmp_path / "llm"
    result = kubellm("render", "examples/hf-autoscale.yaml", "--argocd", REPO, "clusters/prod/llm", "-o", str(out))
    assert result.returncode == 0, result.stderr
    app = yaml.safe_load((out / "argocd-application.yaml").read_text())
    assert app["spec"]["source"] == {"path": "clusters/prod/llm", "repoURL": REPO, "targetRevision": "HEAD"}
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert app["spec"]["ignoreDifferences"] == [
        {"group": "apps", "jsonPointers": ["/spec/replicas"], "kind": "Deployment", "name": "llama-8b", "namespace": "llm"}]
    listed = yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]
    assert "argocd-application.yaml" not in listed  # Argo CD is given the Application, not the directory
    waves = [int(yaml.safe_load((out / name).read_text())["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
             for name in listed]
    assert waves == sorted(waves) and waves[0] == 0 and len(set(waves)) > 5
