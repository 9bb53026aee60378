"""The gateway Deployment carries what precise routing of real engines needs: the served
model's tokenizer files, mounted read-only from where the engines read the model, at the
tokenizerPath the generated gateway config names; and `--workers` from the pod's CPUs."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from kubellm.gateway.config import parse_config
from kubellm.gateway.fromspec import TOKENIZERS_DIR as CONFIG_TOKENIZERS_DIR
from kubellm.gateway.fromspec import gateway_config
from kubellm.render import render
from kubellm.render.gateway import TOKENIZERS_DIR, GatewaySettings, gateway_args, gateway_objects
from kubellm.spec import LLMService, parse_spec
from tests.unit.render.test_render_gateway import parse_gateway_args


def _svc(uri: str = "hf://Qwen/Qwen2.5-0.5B-Instruct", *, engine: str = "vllm", precise: bool = True,
         cache: dict[str, Any] | None = None, name: str = "chat") -> LLMService:
    spec: dict[str, Any] = {"model": {"uri": uri}, "engine": {"kind": engine},
                            "cache": cache if cache is not None else {"accessMode": "ReadWriteMany"}}
    if precise:
        spec["routing"] = {"precisePrefix": {}}
    if engine == "vllm":
        spec["resources"] = {"accelerator": {"type": "nvidia-l4", "count": 1}, "cpu": "6", "memory": "24Gi"}
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": name, "namespace": "llm"}, "spec": spec})


def _gateway_pod(*services: LLMService) -> dict[str, Any]:
    (dep,) = [o for o in gateway_objects("llm", services) if o["kind"] == "Deployment"]
    kubernetes_validate.validate(dep, "1.31", strict=True)
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


def _tokenizer_parts(pod: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"].startswith(TOKENIZERS_DIR)]
    names = {m["name"] for m in mounts}
    return [v for v in pod["volumes"] if v["name"] in names], mounts


def _engine_model_dir(svc: LLMService) -> str:
    """The directory the rendered engine reads its model from (vLLM's model argument)."""
    (dep,) = [o for o in render(svc) if o["kind"] == "Deployment"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    (path,) = [a for a in container["args"] if a.startswith("/models/")]
    return str(path)


def test_the_cache_claim_is_mounted_read_only_where_the_config_reads_the_tokenizer():
    svc = _svc()
    (volume,), (mount,) = _tokenizer_parts(_gateway_pod(svc))
    assert volume["persistentVolumeClaim"] == {"claimName": "chat-model-cache", "readOnly": True}
    assert mount["readOnly"] is True
    # the same files the engine loads: its model directory is /models/cache/<subPath>
    assert _engine_model_dir(svc) == f"/models/cache/{mount['subPath']}"
    (model,) = parse_config(gateway_config([svc], "llm")).models
    assert model.precise_tokenizer == "hf" and str(model.tokenizer_path) == mount["mountPath"]
    assert CONFIG_TOKENIZERS_DIR == TOKENIZERS_DIR


def test_a_pvc_uri_mounts_its_claim_at_the_models_sub_path():
    (volume,), (mount,) = _tokenizer_parts(_gateway_pod(_svc("pvc://weights/qwen/0.5b", cache={})))
    assert volume["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}
    assert mount["subPath"] == "qwen/0.5b" and mount["readOnly"] is True


def test_an_oci_image_cache_mounts_the_image_volume():
    svc = _svc("oci://registry.example/models/qwen:0.5b", cache={"kind": "image"})
    (dep,) = [o for o in gateway_objects("llm", [svc]) if o["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (volume,), (mount,) = _tokenizer_parts(pod)
    assert volume["image"]["reference"] == "registry.example/models/qwen:0.5b"
    assert mount["readOnly"] is True and "subPath" not in mount


@pytest.mark.parametrize("svc", [
    _svc(cache={"accessMode": "ReadWriteOnce"}),  # attached to the engines' node: the gateway would not start elsewhere
    _svc("sim://tiny-chat", engine="sim"),  # the simulator's tokenizer is built in
    _svc(precise=False),  # approximate routing needs no tokenizer
], ids=["read-write-once", "sim", "not-precise"])
def test_no_tokenizer_volume_where_none_can_be_shared_or_none_is_needed(svc: LLMService):
    assert _tokenizer_parts(_gateway_pod(svc)) == ([], [])


def test_two_services_get_one_volume_each():
    a, b = _svc(name="alpha"), _svc("hf://Qwen/Qwen2.5-1.5B-Instruct", name="beta")
    volumes, mounts = _tokenizer_parts(_gateway_pod(a, b))
    assert len({v["name"] for v in volumes}) == 2
    assert sorted(m["mountPath"] for m in mounts) == [f"{TOKENIZERS_DIR}/{s.spec.model.served_name}" for s in (a, b)]


@pytest.mark.parametrize(("cpu", "workers"), [("500m", 1), ("1", 1), ("1500m", 1), ("2", 2), ("4", 4)])
def test_workers_follow_the_pods_whole_cpus(cpu: str, workers: int):
    args = gateway_args(GatewaySettings(cpu=cpu))
    assert parse_gateway_args(args)["workers"] == workers  # what the real `kubellm gateway` parser reads
    assert ("--workers" in args) == (workers > 1)
