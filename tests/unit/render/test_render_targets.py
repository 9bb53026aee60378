"""`--target kserve` and `--target inference-gateway`: what each renders from a spec, what it
reports it cannot express, and --strict. The API server checks the objects against the real
CRDs in tests/integration/render/test_render_targets_apiserver.py."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.render.errors import UnexpressibleError
from kubellm.render.targets.base import Rendered, check_strict
from kubellm.render.targets.inference_gateway import spec_profile, translate
from kubellm.render.targets.kserve import storage_uri
from kubellm.render.targets.select import render_target
from kubellm.spec import LLMService, parse_spec

from tests.unit.render.conftest import EXAMPLE_PATHS

EXPRESSIBLE = {"canary-argo", "canary-gateway", "gguf-cpu", "hf-autoscale", "llama-13b-tp2-tls", "mistral-7b-l4-gcs",
               "oci-image-volume", "quickstart"}
MODES = {"disaggregated": "disaggregated", "llama-70b-multinode": "multinode"}


def service(**spec: Any) -> LLMService:
    body = {"model": {"uri": "sim://m"}, "engine": {"kind": "sim"}, **spec}
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": "chat", "namespace": "llm"}, "spec": body})


# Everything that kserve would otherwise warn about for a plain sim service, turned off.
QUIET: dict[str, Any] = {"security": {"networkPolicy": {"enabled": False}},
         "observability": {"monitor": "none", "alerts": False, "dashboard": False}}


def kinds(rendered: Rendered) -> list[str]:
    return [o["kind"] for o in rendered.objects]


@pytest.mark.parametrize(("uri", "expected"), [
    ("hf://meta-llama/Llama-3.1-8B-Instruct@main", "hf://meta-llama/Llama-3.1-8B-Instruct:main"),
    ("hf://org/repo", "hf://org/repo"),
    ("s3://bucket/models/llama", "s3://bucket/models/llama"),
    ("gs://bucket/mistral", "gs://bucket/mistral"),
    ("https://example.com/m/model.gguf", "https://example.com/m/model.gguf"),
    ("pvc://weights/llama", "pvc://weights/llama"),
    ("oci://registry.example.com/models/mistral:v1", "oci://registry.example.com/models/mistral:v1"),
    ("model-registry://llama-3-8b/v1", "model-registry://llama-3-8b/v1"),
    ("sim://tiny", None),
])
def test_storage_uri_maps_each_source_kserve_reads(uri: str, expected: str | None) -> None:
    assert storage_uri(uri) == expected


@pytest.mark.parametrize(("uri", "hint"), [("az://models/llama", "blob.core.windows.net"), ("models:/my-llm/3", "MLflow")])
def test_a_source_kserve_cannot_read_is_an_error_naming_field_and_target(uri: str, hint: str) -> None:
    with pytest.raises(UnexpressibleError, match=rf"spec\.model\.uri: target kserve .*{hint}"):
        storage_uri(uri)


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[p.stem for p in EXAMPLE_PATHS])
def test_kserve_renders_every_example_it_can_express(path: Any, example_specs: dict[str, LLMService]) -> None:
    svc = example_specs[path.stem]
    if path.stem in MODES:
        with pytest.raises(UnexpressibleError, match=rf"spec\.serving\.mode: target kserve cannot express mode {MODES[path.stem]}"):
            render_target(svc, "kserve")
        return
    assert path.stem in EXPRESSIBLE
    rendered = render_target(svc, "kserve")
    assert kinds(rendered)[-2:] == ["ClusterServingRuntime", "InferenceService"]
    isvc = rendered.objects[-1]
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == f"kubellm-{svc.spec.engine.kind}" == rendered.objects[-2]["metadata"]["name"]
    assert model["securityContext"]["readOnlyRootFilesystem"] is True
    assert isvc["spec"]["predictor"]["securityContext"]["runAsNonRoot"] is True
    if svc.spec.model.scheme != "sim":
        assert model["storageUri"] == storage_uri(svc.spec.model.uri)
        assert "/mnt/models" in " ".join(model["args"])


def test_kserve_scales_on_the_specs_signal_through_keda() -> None:
    svc = service(scaling={"minReplicas": 2, "maxReplicas": 6, "signal": "kvCacheUsage", "target": 0.7,
                           "stabilization": {"scaleUpSeconds": 15, "scaleDownSeconds": 400}}, **QUIET)
    isvc = render_target(svc, "kserve").objects[-1]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    metric = predictor["autoScaling"]["metrics"][0]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["query"] == 'avg(vllm:kv_cache_usage_perc{namespace="llm",pod=~"chat-predictor-.*"})'
    assert metric["external"]["target"] == {"type": "Value", "value": "700m"}
    assert predictor["autoScaling"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 400


def test_kserve_attaches_the_credentials_secret_to_the_service_account_only_by_name() -> None:
    svc = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "m"},
                      "spec": {"model": {"uri": "s3://bucket/llama", "credentials": {"name": "s3-creds"}}}})
    objects = render_target(svc, "kserve").objects
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert account["secrets"] == [{"name": "s3-creds"}]
    assert "s3-creds" not in str(objects[-1])  # the isvc names the account, never the Secret's contents


def test_a_quiet_spec_loses_nothing_and_passes_strict() -> None:
    rendered = render_target(service(**QUIET), "kserve")
    assert rendered.unexpressed == []
    assert check_strict(rendered, strict=True) is rendered


@pytest.mark.parametrize(("spec", "field"), [
    ({"model": {"uri": "hf://org/repo", "ignorePatterns": ["*.bin"], "allowPickle": True}, "engine": {"kind": "vllm"}},
     "model.ignorePatterns"),
    ({"scaling": {"minReplicas": 1, "maxReplicas": 3, "backend": "hpa"}}, "scaling.backend"),
    ({"scaling": {"minReplicas": 1, "maxReplicas": 3, "scaleToZero": True}}, "scaling.scaleToZero"),
    ({"security": {"apiKeys": {"secretRef": {"name": "k"}}, "networkPolicy": {"enabled": False}}}, "security.apiKeys"),
    ({"security": {"networkPolicy": {"enabled": True}}}, "security.networkPolicy"),
    ({"routing": {"scorers": {"queueDepth": 1}}}, "routing"),
    ({"model": {"uri": "model-registry://llama/v1", "allowPickle": True}, "engine": {"kind": "vllm"}}, "model.uri"),
    ({"rollout": {"strategy": "gatewayCanary", "canary": {"uri": "sim://m2"}}}, "rollout.strategy"),
])
def test_each_field_kserve_cannot_express_is_reported_and_strict_refuses(spec: dict[str, Any], field: str) -> None:
    merged = {**QUIET, **spec, "security": {**QUIET["security"], **spec.get("security", {})}}
    body = {"engine": {"kind": "sim"}, **merged}
    if "model" not in body:
        body["model"] = {"uri": "sim://m"}
    svc = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat"}, "spec": body})
    rendered = render_target(svc, "kserve")
    assert field in [u.field for u in rendered.unexpressed]
    with pytest.raises(UnexpressibleError, match=rf"spec\.{field}: target kserve cannot express it"):
        check_strict(rendered, strict=True)


def test_inference_gateway_pool_selects_the_engine_pods_on_the_engine_port(example_specs: dict[str, LLMService]) -> None:
    rendered = render_target(example_specs["hf-autoscale"], "inference-gateway")
    pool = next(o for o in rendered.objects if o["kind"] == "InferencePool")
    deployment = next(o for o in rendered.objects if o["kind"] == "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pool["spec"]["targetPorts"] == [{"number": deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "llama-8b-epp"
    assert {"ConfigMap", "NetworkPolicy", "Deployment", "Service"} <= set(kinds(rendered))


@pytest.mark.parametrize(("scorers", "refs", "missing"), [
    ({"queueDepth": 2, "kvCacheUsage": 1, "prefixCache": 3},
     [("kv-cache-utilization-scorer", 1), ("prefix-cache-scorer", 3), ("queue-scorer", 2)], []),
    ({"loraAffinity": 1, "outstandingRequests": 2}, [("lora-affinity-scorer", 1)], ["outstanding-requests"]),
    ({"session": 1, "precisePrefixCache": 2}, [], ["precise-prefix", "session-affinity"]),
])
def test_routing_profile_translates_where_the_picker_has_a_plugin(scorers: dict[str, float], refs: list[tuple[str, int]],
                                                                     missing: list[str]) -> None:
    profile = spec_profile(service(routing={"scorers": scorers}).spec)
    assert profile is not None
    got, lost = translate(profile)
    assert [(r["pluginRef"], r["weight"]) for r in got[:-1]] == refs
    assert got[-1] == {"pluginRef": "max-score-picker"}
    assert sorted(lost) == missing


def test_inference_gateway_reports_scorers_without_equivalent_and_routes_the_http_route_to_the_pool() -> None:
    route = {"host": "llm.example.com", "gatewayName": "inference-gateway"}
    rendered = render_target(service(routing={"scorers": {"session": 1, "queueDepth": 1}}, exposure={"httpRoute": route}),
                             "inference-gateway")
    assert "routing (session-affinity)" in [u.field for u in rendered.unexpressed]
    http_route = next(o for o in rendered.objects if o["kind"] == "HTTPRoute")
    assert http_route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "chat"}]


def test_inference_gateway_refuses_disaggregated_serving(example_specs: dict[str, LLMService]) -> None:
    with pytest.raises(UnexpressibleError, match="target inference-gateway cannot express mode disaggregated"):
        render_target(example_specs["disaggregated"], "inference-gateway")
