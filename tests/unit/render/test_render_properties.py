"""Property tests over generated specs: valid specs always render (deterministically, to
objects that validate against Kubernetes), and each invalid spec is refused naming its field."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError
from hypothesis import strategies as st

from kubellm.render import render
from kubellm.render.output import to_stream
from kubellm.spec import SpecError, parse_spec

from .test_render_kubernetes_schemas import CUSTOM, crd_validator

names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
uris = st.sampled_from(["hf://org/model@main", "s3://bucket-a/m", "gs://bucket-b/m", "az://container/m",
                        "https://example.com/m", "oci://registry.example.com/m/x:v1", "models:/m/3"])


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["standard", "disaggregated", "multinode"]))
    kind = "vllm" if mode == "multinode" else draw(st.sampled_from(["vllm", "sim"] if mode == "disaggregated" else ["vllm", "sim", "llamacpp"]))
    gpus = draw(st.integers(1, 8)) if kind == "vllm" else 0
    spec: dict[str, Any] = {"model": {"uri": draw(uris)}, "engine": {"kind": kind}, "resources": {"accelerator": {"count": gpus}}}
    if kind == "sim":
        spec["model"]["uri"] = draw(st.sampled_from(["sim://tiny", spec["model"]["uri"]]))
    if kind == "llamacpp":
        spec["model"]["uri"] = "https://example.com/model-q4.gguf"
    if kind == "vllm" and mode == "standard":
        spec["engine"]["tensorParallelSize"] = draw(st.integers(1, gpus))
    lo = draw(st.integers(1, 5))
    backend = draw(st.sampled_from(["keda", "hpa"]))
    scaling = {"minReplicas": lo, "maxReplicas": lo + draw(st.integers(0, 10)), "backend": backend,
               "signal": draw(st.sampled_from(["queueDepth", "kvCacheUsage", "runningRequests", "ttft", "gpuUtilization"]))}
    if backend == "keda" and draw(st.booleans()):
        scaling["scaleToZero"] = True
    spec["serving"] = {"mode": mode}
    if mode == "disaggregated":
        spec["serving"]["prefill"] = {"scaling": scaling, "acceleratorCount": gpus}
        spec["serving"]["decode"] = {"scaling": {"minReplicas": 1}}
    else:
        spec["scaling"] = scaling
    if mode == "multinode":
        spec["serving"]["multinode"] = {"nodes": 2}
        spec["engine"]["tensorParallelSize"] = gpus
        spec["engine"]["pipelineParallelSize"] = 2
    if mode == "standard":
        strategy = draw(st.sampled_from(["rollingUpdate", "argoCanary", "gatewayCanary"]))
        spec["rollout"] = {"strategy": strategy, "maxSurge": draw(st.sampled_from(["0", "1", "25%"]))}
        if strategy != "rollingUpdate":
            spec["rollout"]["canary"] = {"uri": draw(uris), "weight": draw(st.integers(0, 100))}
    if kind == "vllm" and draw(st.booleans()):
        spec["engine"]["loraAdapters"] = [{"name": "sql", "uri": "hf://org/sql-lora"}]
    if spec["model"]["uri"].startswith("oci://") and draw(st.booleans()):
        spec["cache"] = {"kind": "image"}
    if draw(st.booleans()):
        subject = {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}
        spec["security"] = {"tenants": [{"name": "team", "access": draw(st.sampled_from(["view", "operate"])), "subjects": [subject]}],
                            "gpuQuota": "8"}
    if draw(st.booleans()):
        spec["exposure"] = {"ingress": {"host": "llm.example.com", "tls": {"secretName": "tls"}}}
    if draw(st.booleans()):
        spec["observability"] = {"monitor": draw(st.sampled_from(["podMonitor", "serviceMonitor", "none"])), "alerts": draw(st.booleans())}
    metadata = {"name": draw(names)}
    if draw(st.booleans()):
        metadata["namespace"] = draw(names)
    return {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": metadata, "spec": spec}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_specs())
def test_valid_specs_render_deterministically_to_valid_objects(data: dict[str, Any]) -> None:
    service = parse_spec(data)
    first = render(service)
    assert to_stream(first) == to_stream(render(parse_spec(copy.deepcopy(data))))
    names = [(o["kind"], o["metadata"]["name"]) for o in first]
    assert len(names) == len(set(names))
    for obj in first:
        if obj["kind"] in CUSTOM:
            assert not list(crd_validator(obj).iter_errors(obj)), obj["kind"]
        else:
            kubernetes_validate.validate(obj, "1.31", strict=True)


# (mutations: field path -> value, the field path the error must name). The first are single
# fields pydantic refuses; the rest break cross-field rules of kubellm.spec.checks, each set so
# that any valid generated spec violates the rule (other issues may be reported with it).
BREAKAGES: list[tuple[dict[str, Any], str]] = [
    ({"spec.model.uri": "ftp://nope"}, "spec.model.uri"),
    ({"spec.engine.kind": "tgi"}, "spec.engine.kind"),
    ({"spec.engine.bogusField": 1}, "spec.engine.bogusField"),
    ({"metadata.name": "Not_A_Name"}, "metadata.name"),
    ({"spec.scaling.minReplicas": 0}, "spec.scaling.minReplicas"),
    ({"spec.resources.cpu": "lots"}, "spec.resources.cpu"),
    ({"spec.slo.maxErrorRate": 2}, "spec.slo.maxErrorRate"),
    ({"spec.cache.accessMode": "ReadWriteAll"}, "spec.cache.accessMode"),
    # vllm in standard mode: tensorParallelSize x pipelineParallelSize above the accelerators per pod
    ({"spec.engine.kind": "vllm", "spec.serving.mode": "standard", "spec.resources.accelerator.count": 1,
      "spec.engine.tensorParallelSize": 2}, "spec.engine.tensorParallelSize"),
    ({"spec.engine.kind": "vllm", "spec.resources.accelerator.count": 0}, "spec.resources.accelerator.count"),
    # disaggregated prefill/decode needs KV transfer, which llama.cpp lacks
    ({"spec.engine.kind": "llamacpp", "spec.serving.mode": "disaggregated"}, "spec.serving.mode"),
    ({"spec.engine.kind": "sim", "spec.serving.mode": "multinode"}, "spec.serving.mode"),
    # multinode: the parallel sizes must equal nodes x accelerators per node (2 x 8 = 16, not 8)
    ({"spec.engine.kind": "vllm", "spec.serving.mode": "multinode", "spec.serving.multinode": {"nodes": 2},
      "spec.resources.accelerator.count": 8, "spec.engine.tensorParallelSize": 8, "spec.engine.pipelineParallelSize": 1},
     "spec.engine.tensorParallelSize"),
    ({"spec.serving.mode": "disaggregated", "spec.engine.kind": "vllm", "spec.resources.accelerator.count": 1,
      "spec.serving.prefill": {"acceleratorCount": 1, "engine": {"tensorParallelSize": 2}}, "spec.serving.decode": {}},
     "spec.serving.prefill.acceleratorCount"),
    ({"spec.serving.mode": "standard", "spec.serving.decode": {}}, "spec.serving.decode"),
    # a plain HPA cannot scale to zero
    ({"spec.scaling.backend": "hpa", "spec.scaling.scaleToZero": True}, "spec.scaling.scaleToZero"),
    ({"spec.scaling.minReplicas": 5, "spec.scaling.maxReplicas": 2}, "spec.scaling.maxReplicas"),
    ({"spec.engine.kind": "llamacpp", "spec.engine.quantization": "awq"}, "spec.engine.quantization"),
    ({"spec.engine.kind": "llamacpp", "spec.model.uri": "hf://org/model-gguf", "spec.model.allowPatterns": []},
     "spec.model.allowPatterns"),
    ({"spec.engine.kind": "llamacpp", "spec.model.uri": "https://example.com/m.gguf", "spec.model.format": "safetensors"},
     "spec.model.format"),
    ({"spec.model.uri": "hf://org/model@main", "spec.cache.kind": "image"}, "spec.cache.kind"),
    ({"spec.cache.storageClass": {"provisioner": "pd.csi.storage.gke.io"}, "spec.cache.storageClassName": "rwx"},
     "spec.cache.storageClass"),
    ({"spec.rollout.strategy": "gatewayCanary", "spec.rollout.canary": {"weight": 10}}, "spec.rollout.canary.uri"),
    ({"spec.serving.mode": "disaggregated", "spec.rollout.strategy": "argoCanary"}, "spec.rollout.strategy"),
    ({"spec.security.tenants": [{"name": "team", "access": "view", "subjects": [{"kind": "ServiceAccount", "name": "ci"}]}]},
     "spec.security.tenants.0.subjects.0.namespace"),
]


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = copy.deepcopy(value)


@settings(max_examples=120, deadline=None)
@given(valid_specs(), st.sampled_from(BREAKAGES))
def test_every_invalid_spec_is_refused_naming_the_field(data: dict[str, Any], breakage: tuple[dict[str, Any], str]) -> None:
    mutations, expected = breakage
    for path, value in mutations.items():
        _set(data, path, value)
    try:
        parse_spec(data)
    except SpecError as exc:
        assert expected in exc.paths, exc
        assert isinstance(exc.__cause__, ValidationError)  # pydantic's error, mapped once
    else:
        raise AssertionError(f"{mutations!r} was accepted")


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[expected for _, expected in BREAKAGES])
def test_each_breakage_alone_on_a_minimal_spec_names_its_field(breakage: tuple[dict[str, Any], str]) -> None:
    """Every BREAKAGES entry is exercised (hypothesis samples them), on the smallest valid spec."""
    mutations, expected = breakage
    data: dict[str, Any] = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "m"},
                            "spec": {"model": {"uri": "hf://org/model@main"}, "resources": {"accelerator": {"count": 1}}}}
    for path, value in mutations.items():
        _set(data, path, value)
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert expected in caught.value.paths, caught.value
