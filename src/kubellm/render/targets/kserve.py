"""`--target kserve`: a KServe InferenceService (v1beta1, Standard deployment mode) and the
ClusterServingRuntime it names, from the same LLMService.

The runtime (``kubellm-<engine kind>``, cluster-scoped, named so it never collides with the
cluster's own runtimes) holds the engine image and its command; the InferenceService holds
what is per service: the storage URI KServe's storage initializer downloads into
/mnt/models, the engine's arguments (KServe appends them to the runtime's), resources,
placement, replicas and the KEDA metric, the security context. Credentials stay in their
Secret: it is attached to the service's ServiceAccount, where KServe's credential builder
looks for it (HF_TOKEN, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: the keys kubellm uses too).
"""

from __future__ import annotations

from kubellm.render.commands import engine_command
from kubellm.render.context import Obj, RenderContext
from kubellm.render.cost import priority_class, sharing_objects
from kubellm.render.engine_pod import PORT_NAME, engine_volumes, placement, pod_resources
from kubellm.render.errors import UnexpressibleError
from kubellm.render.images import engine_image
from kubellm.render.order import apply_order
from kubellm.render.pod import TMP_MOUNT, container_security, env_list, http_probes, pod_security
from kubellm.render.scaling import behavior
from kubellm.render.security import gpu_quota, service_account
from kubellm.render.signals import SUMMED, quantity
from kubellm.render.sources import Source, source_key
from kubellm.render.targets.base import Rendered, Rule, unexpressed
from kubellm.render.units import Unit, units
from kubellm.spec.engine import STARTUP_SECONDS
from kubellm.spec.scaling import Scaling
from kubellm.spec.service import LLMServiceSpec
from kubellm.spec.uri import parse_model_uri

TARGET = "kserve"
MODEL_DIR = "/mnt/models"  # where KServe's storage initializer (or modelcar) puts the files
RUNTIME_CONTAINER = "kserve-container"  # the name KServe merges the model container into
MODEL_FORMATS = {"vllm": "vLLM", "llamacpp": "gguf", "sim": "kubellm-sim"}
# Schemes KServe's storage initializer reads as they are (hf:// needs its revision moved;
# model-registry:// needs Kubeflow's initializer installed, which the rule below says).
SAME_SCHEMES = {"s3", "gs", "https", "pvc", "oci", "model-registry"}
NO_SCHEME = {
    "az": "KServe reads Azure Blob Storage as https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH; use that URI",
    "models": "KServe has no MLflow registry source; use the model version's artifact URI (s3://, gs://...)",
}


def storage_uri(uri: str) -> str | None:
    """KServe's storageUri for a kubellm model URI; None for sim:// (nothing to download)."""
    parsed = parse_model_uri(uri)
    if parsed.scheme == "sim":
        return None
    if parsed.scheme == "hf":
        # kubellm writes hf://org/repo@rev, KServe hf://org/repo:rev
        return f"hf://{parsed.location}" + (f":{parsed.revision}" if parsed.revision else "")
    if parsed.scheme in SAME_SCHEMES:
        return uri
    raise UnexpressibleError(f"spec.model.uri: target {TARGET} cannot express {uri!r} ({NO_SCHEME[parsed.scheme]})")


def runtime_name(kind: str) -> str:
    return f"kubellm-{kind}"


def serving_runtime(ctx: RenderContext, unit: Unit) -> Obj:
    """The cluster-wide runtime of this engine kind: image and command, no per-service args."""
    kind = ctx.service.spec.engine.kind
    command = engine_command(ctx, unit, _model_source(ctx), [])
    body = {"name": RUNTIME_CONTAINER, "image": _default_image(ctx), "command": list(command.command),
            "securityContext": container_security()}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": runtime_name(kind), "labels": {"app.kubernetes.io/managed-by": "kubellm",
                                                            "app.kubernetes.io/part-of": "kubellm"}},
        "spec": {"containers": [body], "supportedModelFormats": [{"autoSelect": False, "name": MODEL_FORMATS[kind]}]},
    }


def _default_image(ctx: RenderContext) -> str:
    """The kind's image without the spec's override (the runtime is shared; the override is
    set on the InferenceService's model container, which KServe merges over it)."""
    plain = ctx.service.model_copy(update={"spec": ctx.service.spec.model_copy(
        update={"engine": ctx.service.spec.engine.model_copy(update={"image": None})})})
    return engine_image(plain, ctx.images)


def _model_source(ctx: RenderContext) -> Source:
    uri = ctx.service.spec.model.uri
    return Source(uri, source_key(uri), "kserve", MODEL_DIR)


def model_container(ctx: RenderContext, unit: Unit) -> Obj:
    spec = ctx.service.spec
    command = engine_command(ctx, unit, _model_source(ctx), [])
    model: Obj = {
        "modelFormat": {"name": MODEL_FORMATS[spec.engine.kind]},
        "runtime": runtime_name(spec.engine.kind),
        "args": list(command.args),
        "env": env_list(command.env),
        "ports": [{"containerPort": spec.engine.port, "name": PORT_NAME, "protocol": "TCP"}],
        "resources": pod_resources(ctx, unit.gpus),
        "securityContext": container_security(),
        "volumeMounts": [TMP_MOUNT, {"name": "dshm", "mountPath": "/dev/shm"}],
        **http_probes(PORT_NAME, STARTUP_SECONDS[spec.engine.kind]),
    }
    uri = storage_uri(spec.model.uri)
    if uri is not None:
        model["storageUri"] = uri
    if spec.engine.image:
        model["image"] = spec.engine.image
    return model


def kserve_query(ctx: RenderContext, scaling: Scaling) -> str:
    """PromQL over the predictor's pods (KServe names them <isvc>-predictor-...)."""
    namespace = f'namespace="{ctx.namespace}",' if ctx.namespace else ""
    sel = f'{namespace}pod=~"{ctx.name}-predictor-.*"'
    metric = scaling.metric
    if scaling.signal == "ttft":
        return f"histogram_quantile(0.9, sum by (le) (rate({metric}_bucket{{{sel}}}[2m])))"
    return f"{'sum' if scaling.signal in SUMMED else 'avg'}({metric}{{{sel}}})"


def autoscaling(ctx: RenderContext, unit: Unit) -> Obj:
    """KServe's KEDA autoscaler class on the spec's signal, with the spec's windows."""
    scaling = unit.scaling
    target = {"type": "AverageValue" if scaling.signal in SUMMED else "Value",
              "value": quantity(scaling.effective_target)}
    metric = {"backend": "prometheus", "query": kserve_query(ctx, scaling), "serverAddress": scaling.prometheus_url}
    if ctx.namespace:
        metric["namespace"] = ctx.namespace
    return {"behavior": behavior(unit), "metrics": [{"external": {"metric": metric, "target": target}, "type": "External"}]}


def predictor(ctx: RenderContext, unit: Unit) -> Obj:
    spec = ctx.service.spec
    body: Obj = {
        "automountServiceAccountToken": False,
        "deploymentStrategy": {"rollingUpdate": {"maxSurge": _int_or_percent(spec.rollout.max_surge),
                                                 "maxUnavailable": _int_or_percent(spec.rollout.max_unavailable)},
                               "type": "RollingUpdate"},
        "enableServiceLinks": False,
        "labels": ctx.labels("engine"),
        "maxReplicas": unit.scaling.effective_max,
        "minReplicas": unit.scaling.min_replicas,
        "model": model_container(ctx, unit),
        "securityContext": pod_security(ctx),
        "serviceAccountName": ctx.name,
        "terminationGracePeriodSeconds": 60,
        "volumes": engine_volumes(ctx, []),
        **placement(ctx, unit.gpus),
    }
    if unit.scaling.enabled:
        body["autoScaling"] = autoscaling(ctx, unit)
    return body


def _int_or_percent(value: str) -> int | str:
    return value if value.endswith("%") else int(value)


def inference_service(ctx: RenderContext, unit: Unit) -> Obj:
    annotations = {"serving.kserve.io/deploymentMode": "Standard"}
    if unit.scaling.enabled:
        annotations["serving.kserve.io/autoscalerClass"] = "keda"
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": ctx.metadata(ctx.name, "engine", annotations=annotations),
        "spec": {"predictor": predictor(ctx, unit)},
    }


def identity(ctx: RenderContext) -> Obj:
    """The ServiceAccount, with the credentials Secret attached for KServe to find."""
    account = service_account(ctx)
    credentials = ctx.service.spec.model.credentials
    if credentials is not None:
        account["secrets"] = [{"name": credentials.name}]
    return account


def _check_mode(spec: LLMServiceSpec) -> None:
    if spec.serving.mode != "standard":
        raise UnexpressibleError(
            f"spec.serving.mode: target {TARGET} cannot express mode {spec.serving.mode} (an InferenceService "
            "is one predictor Deployment; render it with --target kubernetes)")


def _pvc_cache(spec: LLMServiceSpec) -> bool:
    return spec.cache.kind == "pvc"


def _canary(spec: LLMServiceSpec) -> bool:
    return spec.rollout.strategy != "rollingUpdate"


def _replicated(spec: LLMServiceSpec) -> bool:
    return spec.security.pod_disruption_budget and spec.scaling.effective_max > 1


RULES = (
    Rule("model.allowPatterns", "KServe's storage initializer downloads every file under the URI"),
    Rule("model.ignorePatterns", "KServe's storage initializer downloads every file under the URI"),
    Rule("model.allowPickle", "KServe's storage initializer does not refuse pickle-based weight files",
         when=lambda s: not s.model.allow_pickle and s.model.scheme != "sim"),
    Rule("model.credentials", "KServe reads a GCS key from gcloud-application-credentials.json, not key.json",
         when=lambda s: s.model.credentials is not None and s.model.scheme == "gs"),
    Rule("model.uri", "model-registry:// needs Kubeflow's model registry storage initializer "
         "(a ClusterStorageContainer for model-registry://) installed with KServe",
         when=lambda s: s.model.scheme == "model-registry"),
    Rule("cache", "each predictor pod downloads the weights itself; no shared cache claim or loader Job", when=_pvc_cache),
    Rule("engine.loraAdapters", "LoRA adapters need their own storage; serve them with --target kubernetes"),
    Rule("scaling.backend", "KServe's hpa class scales on cpu or memory only; rendered with its keda class instead",
         when=lambda s: s.scaling.enabled and s.scaling.backend == "hpa"),
    Rule("scaling.backend", "kubellm's operator does not scale InferenceServices; rendered with KServe's keda class instead",
         when=lambda s: s.scaling.enabled and s.scaling.backend == "operator"),
    Rule("scaling.scaleToZero", "scale to zero needs KServe's Knative mode; rendered in Standard mode"),
    Rule("scaling.pollingIntervalSeconds", "KServe sets KEDA's polling interval itself"),
    Rule("rollout.strategy", "KServe's canaryTrafficPercent needs Knative mode; rendered as a rolling update", when=_canary),
    Rule("exposure", "KServe exposes the InferenceService through its own ingress (see its status.url)"),
    Rule("security.apiKeys", "KServe has no API keys; put an authenticating gateway in front"),
    Rule("security.networkPolicy", "no NetworkPolicy is rendered for KServe's pods",
         when=lambda s: s.security.network_policy.enabled),
    Rule("security.tenants", "tenant Roles name kubellm's workload kinds; grant access to InferenceServices instead"),
    Rule("security.podDisruptionBudget", "KServe renders no PodDisruptionBudget", when=_replicated),
    Rule("observability.monitor", "no PodMonitor is rendered; KServe annotates its pods for scraping",
         when=lambda s: s.observability.monitor != "none"),
    Rule("observability.alerts", "no PrometheusRule is rendered", when=lambda s: s.observability.alerts),
    Rule("observability.dashboard", "no dashboard is rendered", when=lambda s: s.observability.dashboard),
    Rule("routing", "KServe routes to its predictor pods without kubellm's gateway"),
    Rule("cost.spot.minAvailable", "KServe renders no PodDisruptionBudget; the floor is not kept"),
    Rule("cost.budget", "no PrometheusRule is rendered (and KServe's predictor pods are named differently)"),
)


def render_kserve(ctx: RenderContext) -> Rendered:
    spec = ctx.service.spec
    _check_mode(spec)
    unit = units(ctx)[0]  # a gatewayCanary's second unit is reported by the rollout rule
    objects = [identity(ctx), *gpu_quota(ctx), *priority_class(ctx), *sharing_objects(ctx), serving_runtime(ctx, unit),
               inference_service(ctx, unit)]
    return Rendered(apply_order(objects), unexpressed(spec, TARGET, RULES))
