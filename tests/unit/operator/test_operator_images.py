"""The image setting through `kubellm install`, the operator and `kubellm apply`: the
operator's Deployment runs the given kubellm image and hands both images to the operator
process, which renders them into what it deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from kubellm.operator.cli import _renderer, register
from kubellm.operator.install import manifests
from kubellm.render.images import ENV_KUBELLM, ENV_LLAMACPP, Images
from kubellm.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
OURS = Images(kubellm="127.0.0.1:5000/team/kubellm:0.1.0", llamacpp="127.0.0.1:5000/team/kubellm-llamacpp:0.1.0")


def operator_cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def the(kind: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def test_the_operator_runs_the_given_image_and_is_told_both() -> None:
    pod = the("Deployment", manifests("kubellm-system", OURS, 2))["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == OURS.kubellm
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[ENV_KUBELLM] == OURS.kubellm and env[ENV_LLAMACPP] == OURS.llamacpp


def test_the_operator_writes_only_to_a_tmp_volume_as_the_image_s_user() -> None:
    """The image (docs/image.md) runs as 65532 and points HOME and TMPDIR at /tmp."""
    pod = the("Deployment", manifests(images=OURS))["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"] and "emptyDir" in pod["volumes"][0]


def test_the_operator_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = the("Namespace", manifests("ops", OURS))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in manifests("ops", OURS):
        kubernetes_validate.validate(doc, "1.31", strict=True)


def test_the_operator_command_reads_the_images_its_deployment_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env `kubellm install` writes is what `kubellm operator`'s options read."""
    (container,) = the("Deployment", manifests(images=OURS))["spec"]["template"]["spec"]["containers"]
    for var in container["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    operator = get_command(operator_cli()).commands["operator"]  # type: ignore[attr-defined]
    params = operator.make_context("operator", list(container["args"][1:])).params
    assert (params["image"], params["llamacpp_image"]) == (OURS.kubellm, OURS.llamacpp)


def test_install_dry_run_prints_the_deployment_with_both_images() -> None:
    result = CliRunner().invoke(operator_cli(), ["install", "--dry-run", "--image", OURS.kubellm,
                                                 "--llamacpp-image", OURS.llamacpp])
    assert result.exit_code == 0, result.output
    assert the("Deployment", list(yaml.safe_load_all(result.stdout))) == the("Deployment", manifests(images=OURS))


def test_install_refuses_a_malformed_image_before_touching_a_cluster() -> None:
    result = CliRunner().invoke(operator_cli(), ["install", "--dry-run", "--image", "kubellm:latest tag"])
    assert result.exit_code != 0
    assert "is not an image reference" in str(result.exception)


def test_apply_and_the_operator_render_with_the_images_given() -> None:
    rendered = _renderer(OURS)(load_spec(EXAMPLES / "gguf-cpu.yaml"), "1.31")
    images = {c["image"] for obj in rendered if obj["kind"] in ("Deployment", "Job")
              for c in obj["spec"]["template"]["spec"].get("initContainers", []) + obj["spec"]["template"]["spec"]["containers"]}
    assert images == {OURS.kubellm, OURS.llamacpp}
