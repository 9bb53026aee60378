"""`--target inference-gateway`: kubellm's engines behind the Gateway API Inference
Extension instead of kubellm's gateway.

Rendered: everything `--target kubernetes` renders for the service (engines, their Service,
cache, scaling, security, monitors), plus

- an ``InferencePool`` (inference.networking.k8s.io/v1, the API of the extension's v1.x
  releases) selecting the engine pods on the engine port, whose endpoint picker is the
  Service ``<name>-epp`` on port 9002: what the extension's ``inferencepool`` Helm chart
  creates for a release named ``<name>``;
- the endpoint picker's plugin config (``EndpointPickerConfig``) in the ConfigMap
  ``<name>-epp-plugins``, with the spec's routing profile translated where the picker has
  an equivalent plugin (queue depth, KV-cache use, prefix cache, LoRA affinity);
- a NetworkPolicy that lets the endpoint picker's pods scrape the engines' /metrics;
- with spec.exposure.httpRoute, the route's backend is the InferencePool.

The extension's v1.6 release removed the InferenceObjective and InferenceModelRewrite APIs
(they were v1alpha2 and experimental), so none is rendered; priority and model rewrites
have no object here.
"""

from __future__ import annotations

from typing import Any

import yaml

from kubellm.gateway.config import PluginConfig, RoutingProfile
from kubellm.gateway.fromspec import scorer_type
from kubellm.render.context import Obj, RenderContext
from kubellm.render.errors import UnexpressibleError
from kubellm.render.order import apply_order
from kubellm.render.render import render
from kubellm.render.security import ENGINE_COMPONENTS
from kubellm.render.targets.base import Rendered, Rule, Unexpressed, unexpressed
from kubellm.spec.service import LLMServiceSpec

TARGET = "inference-gateway"
POOL_API = "inference.networking.k8s.io"
EPP_PORT = 9002  # the extension's ext-proc port (its chart's default)
PLUGINS_FILE = "plugins.yaml"
# kubellm gateway scorer type -> the endpoint picker's plugin type that scores the same thing.
EPP_SCORERS = {
    "queue-depth": "queue-scorer",
    "kv-cache-usage": "kv-cache-utilization-scorer",
    "prefix-affinity": "prefix-cache-scorer",
    "lora-affinity": "lora-affinity-scorer",
}
EPP_PICKERS = {"max-score": "max-score-picker"}


def epp_name(ctx: RenderContext) -> str:
    return f"{ctx.name}-epp"


def inference_pool(ctx: RenderContext) -> Obj:
    spec = {
        "endpointPickerRef": {"failureMode": "FailClose", "group": "", "kind": "Service", "name": epp_name(ctx),
                              "port": {"number": EPP_PORT}},
        "selector": {"matchLabels": ctx.selector("engine")},
        "targetPorts": [{"number": ctx.service.spec.engine.port}],
    }
    return {"apiVersion": f"{POOL_API}/v1", "kind": "InferencePool", "metadata": ctx.metadata(ctx.name, "engine"), "spec": spec}


def spec_profile(spec: LLMServiceSpec) -> RoutingProfile | None:
    """The kubellm gateway profile the spec routes with (None: a profile only the gateway's
    own config defines). For ``default`` the weighted scorers: the gateway's default predicts
    each endpoint's TTFT, which no picker plugin here does, and the weighted profile it replaced
    translates plugin by plugin."""
    routing = spec.routing
    if routing.scorers:
        return RoutingProfile(scorers=tuple(PluginConfig(type=scorer_type(k), weight=w)
                                            for k, w in sorted(routing.scorers.items())))
    return RoutingProfile() if routing.profile == "default" else None


def translate(profile: RoutingProfile) -> tuple[list[Obj], list[str]]:
    """The picker's scorer and picker references for *profile*, and the kubellm plugin types
    that have no equivalent there."""
    refs: list[Obj] = []
    missing: list[str] = []
    for scorer in profile.scorers:
        if scorer.type in EPP_SCORERS:
            refs.append({"pluginRef": EPP_SCORERS[scorer.type], "weight": _weight(scorer.weight)})
        else:
            missing.append(scorer.type)
    if profile.picker.type not in EPP_PICKERS:
        missing.append(profile.picker.type)
    refs.append({"pluginRef": EPP_PICKERS.get(profile.picker.type, "max-score-picker")})
    return refs, missing


def _weight(weight: float) -> int | float:
    return int(weight) if float(weight).is_integer() else weight


def picker_config(refs: list[Obj]) -> dict[str, Any]:
    plugins = [{"type": str(ref["pluginRef"])} for ref in refs]
    return {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig",
            "plugins": plugins, "schedulingProfiles": [{"name": "default", "plugins": refs}]}


def picker_configmap(ctx: RenderContext, refs: list[Obj]) -> Obj:
    text = yaml.safe_dump(picker_config(refs), sort_keys=False)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(f"{ctx.name}-epp-plugins", "routing"),
            "data": {PLUGINS_FILE: text}}


def picker_scrape_policy(ctx: RenderContext) -> Obj:
    """The engines' default-deny policy admits kubellm's gateway; this admits the picker,
    which reads the engines' /metrics to score them."""
    selector = {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ENGINE_COMPONENTS}],
                "matchLabels": {"app.kubernetes.io/instance": ctx.name}}
    source = {"podSelector": {"matchLabels": {"inferencepool": epp_name(ctx)}}}
    ingress = [{"from": [source], "ports": [{"port": ctx.service.spec.engine.port, "protocol": "TCP"}]}]
    spec = {"ingress": ingress, "podSelector": selector, "policyTypes": ["Ingress"]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": ctx.metadata(f"{ctx.name}-epp-scrape", "network"), "spec": spec}


def route_to_pool(ctx: RenderContext, obj: Obj) -> Obj:
    """kubellm's HTTPRoute, sending to the InferencePool instead of a Service."""
    if obj["kind"] != "HTTPRoute":
        return obj
    backend = {"group": POOL_API, "kind": "InferencePool", "name": ctx.name}
    rules = [{**rule, "backendRefs": [backend]} for rule in obj["spec"]["rules"]]
    return {**obj, "spec": {**obj["spec"], "rules": rules}}


def _check_mode(spec: LLMServiceSpec) -> None:
    if spec.serving.mode != "standard":
        raise UnexpressibleError(
            f"spec.serving.mode: target {TARGET} cannot express mode {spec.serving.mode} (an InferencePool "
            "routes one set of identical model servers; render it with --target kubernetes)")


RULES = (
    Rule("rollout.canary", "the InferencePool selects the main engines only; the canary's weight is not applied",
         when=lambda s: s.rollout.strategy != "rollingUpdate"),
    Rule("security.apiKeys", "the endpoint picker checks no API keys; authenticate on the Gateway"),
    Rule("routing.sessionHeader", "the endpoint picker has no session affinity"),
    Rule("routing.profile", "a profile defined only in kubellm's gateway config; the picker gets the default profile",
         when=lambda s: not s.routing.scorers and s.routing.profile != "default"),
    Rule("scaling.scaleToZero", "scale from zero is activated by kubellm's gateway, which this path does not run"),
    Rule("exposure.ingress", "an Ingress cannot send to an InferencePool; use exposure.httpRoute"),
)


def _routing_losses(missing: list[str]) -> list[Unexpressed]:
    return [Unexpressed(f"routing ({kind})", TARGET, "the endpoint picker has no equivalent plugin") for kind in missing]


def render_inference_gateway(ctx: RenderContext) -> Rendered:
    spec = ctx.service.spec
    _check_mode(spec)
    profile = spec_profile(spec) or RoutingProfile()
    refs, missing = translate(profile)
    version = f"{ctx.target[0]}.{ctx.target[1]}"
    objects = [route_to_pool(ctx, obj) for obj in render(ctx.service, version, ctx.images)]
    objects += [inference_pool(ctx), picker_configmap(ctx, refs)]
    if spec.security.network_policy.enabled:
        objects.append(picker_scrape_policy(ctx))
    lost = unexpressed(spec, TARGET, RULES) + _routing_losses(missing)
    return Rendered(apply_order(objects), lost)
