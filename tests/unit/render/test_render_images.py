"""One setting names kubellm's image everywhere it is rendered (kubellm.render.images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from kubellm.render import render
from kubellm.render.cli import register
from kubellm.render.errors import ImageReferenceError
from kubellm.render.images import KUBELLM_IMAGE, LLAMACPP_IMAGE, VLLM_IMAGE, Images, images_from
from kubellm.spec import LLMService

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
OURS = Images(kubellm="127.0.0.1:5000/team/kubellm:0.1.0", llamacpp="registry.example.com/kubellm-llamacpp:0.1.0")


def containers(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Every container and init container of *objects*: '<kind>/<name>/<container>' -> image."""
    found = {}
    for obj in objects:
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
        for c in (pod or {}).get("initContainers", []) + (pod or {}).get("containers", []):
            found[f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"] = c["image"]
    return found


def with_changes(service: LLMService, **engine: Any) -> LLMService:
    """*service* with its model pulled from S3 into a cache (so a loader Job renders) and
    *engine* fields changed."""
    data = service.model_dump(by_alias=True, exclude_none=True)
    data["spec"]["model"]["uri"] = "s3://models/tiny-chat"
    data["spec"]["cache"] = {"size": "1Gi"}
    data["spec"]["engine"].update(engine)
    return LLMService.model_validate(data)


def test_the_simulator_service_runs_the_given_kubellm_image_in_every_container(example_specs: dict[str, LLMService]) -> None:
    images = containers(render(with_changes(example_specs["quickstart"]), images=OURS))
    assert {k.rsplit("/", 1)[1] for k in images} == {"pull", "wait-for-weights", "engine"}
    assert set(images.values()) == {OURS.kubellm}


def test_the_llamacpp_engine_runs_the_given_llamacpp_image_and_its_loader_kubellm(example_specs: dict[str, LLMService]) -> None:
    images = containers(render(example_specs["gguf-cpu"], images=OURS))
    engines = {v for k, v in images.items() if k.endswith("/engine")}
    others = {v for k, v in images.items() if not k.endswith("/engine")}
    assert engines == {OURS.llamacpp}
    assert others == {OURS.kubellm}


def test_vllm_keeps_its_public_image_while_the_loader_takes_the_setting(example_specs: dict[str, LLMService]) -> None:
    images = containers(render(example_specs["hf-autoscale"], images=OURS))
    assert {v for k, v in images.items() if k.endswith("/engine")} == {VLLM_IMAGE}
    assert {v for k, v in images.items() if "/pull" in k} == {OURS.kubellm}


def test_a_spec_s_own_engine_image_wins(example_specs: dict[str, LLMService]) -> None:
    images = containers(render(with_changes(example_specs["quickstart"], image="example.com/my-sim:1"), images=OURS))
    assert {v for k, v in images.items() if k.endswith("/engine")} == {"example.com/my-sim:1"}


def test_defaults_are_the_public_images(example_specs: dict[str, LLMService]) -> None:
    assert set(containers(render(example_specs["quickstart"])).values()) == {KUBELLM_IMAGE}
    assert Images() == images_from(None, None) == Images(kubellm=KUBELLM_IMAGE, llamacpp=LLAMACPP_IMAGE)


@pytest.mark.parametrize("good", [
    "kubellm:0.1.0", "docker.io/library/kubellm:0.1.0", "127.0.0.1:5000/a/b-c/kubellm:v1.2_3",
    "ghcr.io/kubellm/kubellm@sha256:" + "0" * 64, "localhost/kubellm",
])
def test_image_references_that_runtimes_accept(good: str) -> None:
    assert images_from(good, good) == Images(kubellm=good, llamacpp=good)


@pytest.mark.parametrize("bad", ["", "Kubellm:1", "kubellm:0.1 0", "kubellm:", "http://r/kubellm:1", "kubellm@sha256:abc", "a//b"])
def test_a_malformed_image_reference_is_refused_with_the_form_to_use(bad: str) -> None:
    with pytest.raises(ImageReferenceError, match=r"REPOSITORY\[:TAG\]"):
        Images(kubellm=bad)
    if bad:  # empty means "not given" to images_from
        with pytest.raises(ImageReferenceError):
            images_from(None, bad)


def render_cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)  # keep "render" a subcommand
    return app


def test_render_command_takes_both_image_flags() -> None:
    result = CliRunner().invoke(render_cli(), ["render", str(EXAMPLES / "gguf-cpu.yaml"), "--gateway",
                                 "--image", OURS.kubellm, "--llamacpp-image", OURS.llamacpp])
    assert result.exit_code == 0, result.output
    images = containers(list(yaml.safe_load_all(result.stdout)))
    assert {v for k, v in images.items() if k.endswith("/engine")} == {OURS.llamacpp}
    assert any(k.startswith("Deployment/kubellm-gateway") for k in images)  # the gateway takes it too
    assert {v for k, v in images.items() if not k.endswith("/engine")} == {OURS.kubellm}


def test_render_command_refuses_a_bad_image_with_exit_2() -> None:
    result = CliRunner().invoke(render_cli(), ["render", str(EXAMPLES / "quickstart.yaml"), "--image", "Not An Image"])
    assert result.exit_code == 2
    assert "is not an image reference" in result.output
