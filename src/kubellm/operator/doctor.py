"""`kubellm doctor`: what a live cluster offers an LLMService, and what is missing.

``gather`` reads the cluster into ``Facts`` (the only I/O); ``assess`` turns facts into
findings (pure, table-tested). A finding is ok, warn (works, with a limitation) or fail
(an LLMService that needs it cannot run).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from kubellm.operator.gatewaydoctor import GatewayFacts, gateway_findings, gather_gateway
from kubellm.operator.kinds import MANAGED_KINDS, ManagedKind
from kubellm.operator.kube import CRD_KIND, NODE_KIND, Kube
from kubellm.operator.commands import pod_failures
from kubellm.operator.podfailures import PodFailure
from kubellm.spec import LLMService
from kubellm.spec.schema import GROUP, PLURAL

Level = Literal["ok", "warn", "fail"]
POD_KIND = ManagedKind("", "v1", "Pod", "pods")
DAEMONSET_KIND = ManagedKind("apps", "v1", "DaemonSet", "daemonsets")
QUOTA_KIND = next(k for k in MANAGED_KINDS if k.kind == "ResourceQuota")
STORAGECLASS_KIND = next(k for k in MANAGED_KINDS if k.kind == "StorageClass")
PRODUCT_LABELS = ("nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "node.kubernetes.io/instance-type")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
IMAGE_VOLUME_DEFAULT_ON = (1, 35)
IMAGE_VOLUME_MIN = (1, 31)

# CRDs of the add-ons the renderer may use, and what needs them.
ADDON_CRDS: dict[str, str] = {
    f"{PLURAL}.{GROUP}": "the kubellm operator (kubellm install)",
    "scaledobjects.keda.sh": "KEDA: autoscaling and scale to zero (scaling.backend keda)",
    "servicemonitors.monitoring.coreos.com": "Prometheus Operator: metrics scraping",
    "podmonitors.monitoring.coreos.com": "Prometheus Operator: engine metrics scraping",
    "prometheusrules.monitoring.coreos.com": "Prometheus Operator: SLO alerts",
    "leaderworkersets.leaderworkerset.x-k8s.io": "LeaderWorkerSet: serving.mode multinode",
    "rollouts.argoproj.io": "Argo Rollouts: rollout.strategy argoCanary",
    "httproutes.gateway.networking.k8s.io": "Gateway API: spec.exposure.httpRoute",
    "referencegrants.gateway.networking.k8s.io": "Gateway API: httpRoute TLS from a Gateway in another namespace",
    "certificates.cert-manager.io": "cert-manager: an exposure tls.issuer",
}


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str


@dataclass(frozen=True)
class GpuPool:
    product: str
    nodes: int
    gpus: float
    free: float


@dataclass
class Facts:
    version: tuple[int, int]
    resource: str = "nvidia.com/gpu"
    pools: list[GpuPool] = field(default_factory=list)
    device_plugins: list[str] = field(default_factory=list)
    crds: set[str] = field(default_factory=set)
    default_storage_class: str | None = None
    storage_classes: list[str] = field(default_factory=list)
    quota_free: dict[str, float] = field(default_factory=dict)
    """ResourceQuota name -> accelerator requests still allowed in the namespace."""
    gateway: GatewayFacts | None = None
    """The namespace's gateway and what it must see (gatewaydoctor.py)."""
    pod_failures: list[PodFailure] = field(default_factory=list)
    """Containers of kubellm's pods in the namespace that are stuck or failed."""


def _number(value: object) -> float:
    text = str(value or "0")
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _product(node: dict[str, Any]) -> str:
    labels = node["metadata"].get("labels") or {}
    return next((labels[k] for k in PRODUCT_LABELS if k in labels), "unlabelled")


def gpu_pools(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], resource: str) -> list[GpuPool]:
    """GPU nodes grouped by product, with what running pods already request."""
    used: dict[str, float] = defaultdict(float)
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in pod["spec"].get("containers", []):
            requests = (container.get("resources") or {}).get("requests") or {}
            used[pod["spec"].get("nodeName") or ""] += _number(requests.get(resource))
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for node in nodes:
        gpus = _number(((node.get("status") or {}).get("allocatable") or {}).get(resource))
        if gpus <= 0:
            continue
        entry = totals[_product(node)]
        entry[0] += 1
        entry[1] += gpus
        entry[2] += max(gpus - used[node["metadata"]["name"]], 0)
    return [GpuPool(p, int(n), g, f) for p, (n, g, f) in sorted(totals.items())]


def _gpu_findings(facts: Facts) -> list[Finding]:
    if not facts.pools:
        return [Finding("gpu-nodes", "warn", f"no node advertises {facts.resource}: only sim and llamacpp engines can run")]
    text = ", ".join(f"{p.product}: {p.nodes} node(s), {p.free:g}/{p.gpus:g} free" for p in facts.pools)
    found = [Finding("gpu-nodes", "ok", text)]
    if facts.device_plugins:
        found.append(Finding("device-plugin", "ok", ", ".join(facts.device_plugins)))
    else:
        found.append(Finding("device-plugin", "warn", "nodes advertise GPUs but no NVIDIA device plugin DaemonSet was found "
                             "(GPU Operator or nvidia-device-plugin); simulated nodes (kwok) have none"))
    return found


def _crd_findings(facts: Facts) -> list[Finding]:
    return [
        Finding(f"crd:{name}", "ok" if name in facts.crds else "warn", ("installed: " if name in facts.crds else "missing: ") + why)
        for name, why in ADDON_CRDS.items()
    ]


def _version_findings(facts: Facts) -> list[Finding]:
    major, minor = facts.version
    text = f"Kubernetes {major}.{minor}"
    if facts.version < IMAGE_VOLUME_MIN:
        return [Finding("kubernetes-version", "warn", f"{text}: image volumes (cache.kind image) need 1.31 or later")]
    if facts.version < IMAGE_VOLUME_DEFAULT_ON:
        return [Finding("kubernetes-version", "warn", f"{text}: image volumes (cache.kind image) need the ImageVolume feature gate")]
    return [Finding("kubernetes-version", "ok", f"{text}: image volumes available")]


def _storage_findings(facts: Facts) -> list[Finding]:
    if facts.default_storage_class:
        return [Finding("storage-class", "ok", f"default StorageClass {facts.default_storage_class}")]
    others = f" (classes: {', '.join(facts.storage_classes)})" if facts.storage_classes else ""
    return [Finding("storage-class", "warn", f"no default StorageClass{others}: set spec.cache.storageClassName or storageClass")]


def _quota_findings(facts: Facts) -> list[Finding]:
    return [Finding("quota", "ok" if free > 0 else "warn", f"ResourceQuota {name}: {free:g} {facts.resource} left")
            for name, free in sorted(facts.quota_free.items())]


def _spec_findings(facts: Facts, service: LLMService) -> list[Finding]:
    accel = service.spec.resources.accelerator
    if accel.count == 0:
        return [Finding("spec-fit", "ok", f"{service.name} needs no accelerator")]
    pools = [p for p in facts.pools if accel.type is None or p.product == accel.type]
    if not pools:
        return [Finding("spec-fit", "fail", f"{service.name} needs {accel.type or 'a GPU'} and no node offers it")]
    if max(p.free for p in pools) < accel.count:
        return [Finding("spec-fit", "fail", f"{service.name} needs {accel.count} free {accel.type or 'GPU'} per pod; not that many are free")]
    return [Finding("spec-fit", "ok", f"{service.name} fits: {', '.join(p.product for p in pools)}")]


def assess(facts: Facts, service: LLMService | None = None) -> list[Finding]:
    findings = _version_findings(facts) + _gpu_findings(facts) + _crd_findings(facts) + _storage_findings(facts)
    findings += _quota_findings(facts)
    if facts.gateway is not None:
        findings += [Finding(*check) for check in gateway_findings(facts.gateway)]
    findings += [Finding(f"pod {f.pod}", "fail", "\n".join(f.lines())) for f in facts.pod_failures]
    if service is not None:
        findings += _spec_findings(facts, service)
    return findings


async def gather(kube: Kube, namespace: str, resource: str = "nvidia.com/gpu") -> Facts:
    facts = Facts(version=await kube.server_version(), resource=resource)
    nodes = await kube.list(NODE_KIND)
    pods = await kube.list(POD_KIND, "*")
    facts.pools = gpu_pools(nodes, pods, resource)
    facts.device_plugins = [
        f"{d['metadata']['namespace']}/{d['metadata']['name']}"
        for d in await kube.list(DAEMONSET_KIND, "*")
        if "device-plugin" in d["metadata"]["name"] or "gpu-operator" in d["metadata"]["name"]
    ]
    facts.crds = {c["metadata"]["name"] for c in await kube.list(CRD_KIND)}
    classes = await kube.list(STORAGECLASS_KIND)
    facts.storage_classes = sorted(c["metadata"]["name"] for c in classes)
    facts.default_storage_class = next(
        (c["metadata"]["name"] for c in classes if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"), None
    )
    for quota in await kube.list(QUOTA_KIND, namespace):
        status = quota.get("status") or {}
        key = f"requests.{resource}"
        if key in (status.get("hard") or {}):
            facts.quota_free[quota["metadata"]["name"]] = _number(status["hard"][key]) - _number((status.get("used") or {}).get(key))
    facts.gateway = await gather_gateway(kube, namespace)
    facts.pod_failures = await pod_failures(kube, namespace, {"app.kubernetes.io/managed-by": "kubellm"})
    return facts
