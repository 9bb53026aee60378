"""The gateway of one namespace: Deployment, Service, ServiceAccount and its Role, PDB,
autoscaler and monitor. Pure: a namespace's services and the gateway settings in, objects out.

One gateway per namespace (not one for the cluster): its discovery watches EndpointSlices
of one namespace, so its Role is namespaced and grants nothing elsewhere; each namespace's
tenants, keys and limits stay apart; a bad config or a load spike in one namespace does not
reach another (docs/gateway-in-cluster.md).

The gateway's config (ConfigMap ``kubellm-gateway``) is the gateway package's output
(``gateway.fromspec.gateway_configmap``); the callers (``kubellm render --gateway``, the
operator) add it: ``render`` does not import the gateway. The paths it is read from are
fixed here and checked against fromspec's by a unit test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from kubellm.render.context import Obj, RenderContext, short_hash
from kubellm.render.gateway_network import gateway_network_policy
from kubellm.render.images import KUBELLM_IMAGE
from kubellm.render.pod import TMP_MOUNT, TMP_VOLUME, container_security
from kubellm.render.sources import resolve
from kubellm.spec import LLMService
from kubellm.spec.types import Quantity, quantity_bytes

NAME = "kubellm-gateway"
PORT_NAME = "http"
CONFIG_DIR = "/etc/kubellm"
CONFIG_PATH = f"{CONFIG_DIR}/gateway/gateway.yaml"
KEYS_DIR = f"{CONFIG_DIR}/api-keys"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKENIZERS_DIR = "/var/lib/kubellm/tokenizers"
"""Where a served model's files (tokenizer.json, chat template) appear in the gateway pod:
``<dir>/<served name>``, the tokenizerPath gateway.fromspec writes (checked by a unit test)."""
SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME}
LABELS = {**SELECTOR, "app.kubernetes.io/component": "gateway", "app.kubernetes.io/managed-by": "kubellm",
          "app.kubernetes.io/part-of": "kubellm"}
DISCOVERY_RULES = [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
"""All the gateway's Role grants: its config and keys come as files (the kubelet reads them)."""


class GatewaySettings(BaseModel):
    """How the gateway runs (the operator's settings; `kubellm render --gateway` uses the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = KUBELLM_IMAGE
    replicas: int = Field(2, ge=1)
    """Replicas, and the autoscaler's minimum."""
    max_replicas: int = Field(10, ge=1)
    autoscale_on: Literal["cpu", "inFlight", "none"] = "cpu"
    """HPA signal: CPU utilisation, or in-flight requests per pod (`kubellm_requests_in_flight`
    through the Prometheus Adapter); none: fixed replicas."""
    target_cpu_percent: int = Field(70, ge=1, le=100)
    target_in_flight: int = Field(64, ge=1)
    cpu: Quantity = "1"
    memory: Quantity = "512Mi"
    port: int = Field(8080, ge=1024, le=65535)
    service_port: int = Field(80, ge=1, le=65535)
    drain_seconds: int = Field(30, ge=0, le=3600)
    """SIGTERM: time in-flight requests get (the config's timeouts.drainS; the pod's grace
    period is this plus the pre-stop pause plus a margin)."""
    prometheus_namespace: str = "monitoring"
    run_as_user: int = Field(10001, ge=10000)

    @property
    def grace_seconds(self) -> int:
        return PRE_STOP_SECONDS + self.drain_seconds + 5


PRE_STOP_SECONDS = 5
"""Endpoints stop listing a terminating pod a moment after it gets SIGTERM; the pause keeps
it accepting until load balancers have seen that, then the gateway drains."""


def metadata(namespace: str, name: str = NAME) -> Obj:
    return {"name": name, "namespace": namespace, "labels": dict(LABELS)}


def keyed_services(services: Sequence[LLMService]) -> list[LLMService]:
    return sorted((s for s in services if s.spec.security.api_keys is not None), key=lambda s: s.metadata.name)


def config_volume(services: Sequence[LLMService]) -> Obj:
    """The config and every API-key Secret in one projected volume: the kubelet swaps it as
    a whole, so a config naming a new keys file never sees the file missing. Secrets are
    optional: a missing one leaves its file out (the operator then leaves that service out
    of the config and marks it Degraded) instead of stopping every pod of the gateway."""
    sources: list[Obj] = [{"configMap": {"name": NAME, "items": [{"key": "gateway.yaml", "path": "gateway/gateway.yaml"}]}}]
    for svc in keyed_services(services):
        ref = svc.spec.security.api_keys.secret_ref  # type: ignore[union-attr]  # keyed_services keeps these
        item = {"key": ref.key, "path": f"api-keys/{svc.metadata.name}"}
        sources.append({"secret": {"name": ref.name, "items": [item], "optional": True}})
    return {"name": "config", "projected": {"sources": sources, "defaultMode": 0o440}}


def token_volume() -> Obj:
    """The ServiceAccount token for the EndpointSlice watch, mounted explicitly where
    in-cluster clients look (automount stays off everywhere)."""
    sources = [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]
    return {"name": "kube-api-access", "projected": {"sources": sources, "defaultMode": 0o440}}


def otel_env(services: Sequence[LLMService]) -> list[Obj]:
    """OTLP settings of the first service (by name) that sets an endpoint. gRPC, as the
    engines' ``--otlp-traces-endpoint`` speaks it: one collector address serves both."""
    endpoints = [s.spec.observability.otel_endpoint for s in sorted(services, key=lambda s: s.metadata.name)]
    endpoint = next((e for e in endpoints if e), None)
    if endpoint is None:
        return []
    return [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint},
            {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "grpc"}, {"name": "OTEL_SERVICE_NAME", "value": NAME}]


def gateway_workers(settings: GatewaySettings) -> int:
    """`kubellm gateway --workers`: one process per whole CPU of the pod's limit, at least one."""
    return max(1, int(quantity_bytes(settings.cpu)))


def gateway_args(settings: GatewaySettings) -> list[str]:
    """What follows `kubellm` in the container: the `kubellm gateway` command line."""
    workers = gateway_workers(settings)
    return ["gateway", "--config", CONFIG_PATH, "--host", "0.0.0.0", "--port", str(settings.port),
            *(["--workers", str(workers)] if workers > 1 else [])]


def _tokenizer_volume(svc: LLMService, target: tuple[int, int]) -> tuple[Obj, Obj] | None:
    """The volume and read-only mount that put *svc*'s model files at TOKENIZERS_DIR/<served
    name>, where the engines' copy already is: the weights cache claim (subPath: the model's
    key), a pvc:// claim, or the OCI image volume. None where the gateway cannot share them (a
    ReadWriteOnce cache claim is attached to the engines' node): the gateway then starts, warns
    once naming the model and the missing file, and routes approximately."""
    ctx = RenderContext(svc, target)
    source = resolve(ctx, svc.spec.model.uri)
    name = f"tokenizer-{short_hash(svc.metadata.name)}"
    if source.kind not in ("cache", "claim", "image") or (
            source.kind == "cache" and svc.spec.cache.access_mode == "ReadWriteOnce"):
        return None
    # The engines' one volume, renamed, mounted at the model's directory inside it.
    (volume,), (engine_mount,) = source.volumes, source.mounts
    sub_path = source.path.removeprefix(engine_mount["mountPath"]).strip("/")
    mount: Obj = {"name": name, "mountPath": f"{TOKENIZERS_DIR}/{svc.spec.model.served_name}", "readOnly": True}
    return {**volume, "name": name}, {**mount, **({"subPath": sub_path} if sub_path else {})}


def tokenizer_volumes(services: Sequence[LLMService], target: tuple[int, int]) -> tuple[list[Obj], list[Obj]]:
    """Volumes and mounts of the served models' tokenizers, for each service routed by its
    engines' KV events (routing.precisePrefix) on a real engine (the simulator's tokenizer is
    built in)."""
    pairs = [_tokenizer_volume(s, target) for s in sorted(services, key=lambda s: s.metadata.name)
             if s.spec.routing.precise_prefix is not None and s.spec.engine.kind != "sim"]
    kept = [p for p in pairs if p is not None]
    return [v for v, _ in kept], [m for _, m in kept]


def probes() -> Obj:
    ready = {"httpGet": {"path": "/ready", "port": PORT_NAME}, "periodSeconds": 2, "failureThreshold": 2, "timeoutSeconds": 2}
    live = {"httpGet": {"path": "/health", "port": PORT_NAME}, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 3}
    return {"readinessProbe": ready, "livenessProbe": live}


def gateway_container(services: Sequence[LLMService], settings: GatewaySettings, ctx_target: tuple[int, int],
                      tokenizer_mounts: Sequence[Obj] = ()) -> Obj:
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    body: Obj = {
        "name": "gateway",
        "image": settings.image,
        "imagePullPolicy": "Always",
        "command": ["kubellm"],
        "args": gateway_args(settings),
        "env": [{"name": "HOME", "value": "/tmp"}, *otel_env(services)],
        "ports": [{"containerPort": settings.port, "name": PORT_NAME, "protocol": "TCP"}],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True},
            TMP_MOUNT,
            *tokenizer_mounts,
        ],
        **probes(),
    }
    # The sleep action needs no shell or binary in the image (Kubernetes 1.30 and later).
    if ctx_target >= (1, 30):
        body["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
    return body


def spread() -> list[Obj]:
    """Replicas on different nodes and zones where the cluster has them (never unschedulable)."""
    return [
        {"labelSelector": {"matchLabels": dict(SELECTOR)}, "maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway"}
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def pod_template(services: Sequence[LLMService], settings: GatewaySettings, target: tuple[int, int]) -> Obj:
    uid = settings.run_as_user
    tokenizer_vols, tokenizer_mounts = tokenizer_volumes(services, target)
    return {
        "metadata": {"labels": dict(LABELS)},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [gateway_container(services, settings, target, tokenizer_mounts)],
            "enableServiceLinks": False,
            "securityContext": {"fsGroup": uid, "runAsGroup": uid, "runAsNonRoot": True, "runAsUser": uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "serviceAccountName": NAME,
            "terminationGracePeriodSeconds": settings.grace_seconds,
            "topologySpreadConstraints": spread(),
            "volumes": [config_volume(services), token_volume(), TMP_VOLUME, *tokenizer_vols],
        },
    }


def deployment(namespace: str, services: Sequence[LLMService], settings: GatewaySettings, target: tuple[int, int]) -> Obj:
    spec: Obj = {
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": dict(SELECTOR)},
        # A new pod is ready before an old one goes: a rollout never lowers capacity.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": pod_template(services, settings, target),
    }
    if settings.autoscale_on == "none":
        spec["replicas"] = settings.replicas  # else the HPA owns replicas (starting at its minimum)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(namespace), "spec": spec}


def service(namespace: str, settings: GatewaySettings) -> Obj:
    port = {"name": PORT_NAME, "port": settings.service_port, "protocol": "TCP", "targetPort": PORT_NAME}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(namespace),
            "spec": {"ports": [port], "selector": dict(SELECTOR), "type": "ClusterIP"}}


def identity(namespace: str) -> list[Obj]:
    """ServiceAccount, a Role with only the discovery rules, and their binding."""
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    subject = {"kind": "ServiceAccount", "name": NAME, "namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(namespace), "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(namespace),
         "rules": [dict(r) for r in DISCOVERY_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(namespace),
         "roleRef": ref, "subjects": [subject]},
    ]


def disruption_budget(namespace: str) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(namespace),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)}}}


def autoscaler(namespace: str, settings: GatewaySettings) -> list[Obj]:
    if settings.autoscale_on == "none":
        return []
    if settings.autoscale_on == "cpu":
        metric: Obj = {"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": settings.target_cpu_percent}}}
    else:
        metric = {"type": "Pods", "pods": {"metric": {"name": IN_FLIGHT_METRIC},
                                           "target": {"type": "AverageValue", "averageValue": str(settings.target_in_flight)}}}
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    spec = {"maxReplicas": max(settings.max_replicas, settings.replicas), "metrics": [metric],
            "minReplicas": settings.replicas, "scaleTargetRef": target}
    return [{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": metadata(namespace), "spec": spec}]


IN_FLIGHT_METRIC = "kubellm_requests_in_flight"
ADAPTER_RULES = f"{NAME}-adapter-rules"


def adapter_rules(namespace: str, settings: GatewaySettings) -> list[Obj]:
    """The Prometheus Adapter rule that serves the in-flight HPA's Pods metric (merge it into
    the adapter's config, as the engines' rules; the gateway's PodMonitor scrapes the series)."""
    if settings.autoscale_on != "inFlight":
        return []
    rule = {
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        "name": {"as": IN_FLIGHT_METRIC, "matches": f"^{IN_FLIGHT_METRIC}$"},
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "seriesQuery": f'{IN_FLIGHT_METRIC}{{namespace!="",pod!=""}}',
    }
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(namespace, ADAPTER_RULES),
             "data": {"rules.yaml": yaml.safe_dump({"rules": [rule]}, sort_keys=True)}}]


def monitor(namespace: str, services: Sequence[LLMService]) -> list[Obj]:
    """A PodMonitor for the gateway's kubellm_* series, labelled like the services' monitors."""
    wanted = [s.spec.observability for s in sorted(services, key=lambda s: s.metadata.name) if s.spec.observability.monitor != "none"]
    if not wanted:
        return []
    meta = metadata(namespace)
    meta["labels"] = {**meta["labels"], **wanted[0].monitor_labels}
    endpoint = {"interval": f"{wanted[0].scrape_interval_seconds}s", "path": "/metrics", "port": PORT_NAME}
    spec = {"namespaceSelector": {"matchNames": [namespace]}, "podMetricsEndpoints": [endpoint],
            "selector": {"matchLabels": dict(SELECTOR)}}
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta, "spec": spec}]


def gateway_objects(namespace: str, services: Sequence[LLMService], settings: GatewaySettings | None = None,
                    target: tuple[int, int] = (1, 31)) -> list[Obj]:
    """Every object of *namespace*'s gateway except its ConfigMap (see the module docstring)."""
    settings = settings or GatewaySettings()
    return [
        *identity(namespace),
        gateway_network_policy(metadata(namespace), SELECTOR, services, settings),
        service(namespace, settings),
        deployment(namespace, services, settings, target),
        disruption_budget(namespace),
        *autoscaler(namespace, settings),
        *adapter_rules(namespace, settings),
        *monitor(namespace, services),
    ]

