"""The kinds of object the operator creates, prunes and may read: one table.

The same table gives the pruning list (every kind is listed by label when pruning), the
least-privilege RBAC rules of ``kubellm install``, and, for kinds that come from a CRD,
the hint doctor and the Degraded condition give when the CRD is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.operator.errors import UnmanagedKindError


@dataclass(frozen=True)
class ManagedKind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    crd_hint: str = ""
    """Non-empty for kinds served by an add-on's CRD: how to get it."""
    engine_phase: bool = False
    """Engines and what scales them: applied only once the model cache is ready."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


MANAGED_KINDS: tuple[ManagedKind, ...] = (
    ManagedKind("", "v1", "ServiceAccount", "serviceaccounts"),
    ManagedKind("", "v1", "ConfigMap", "configmaps"),
    ManagedKind("", "v1", "Secret", "secrets"),
    ManagedKind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ManagedKind("", "v1", "Service", "services"),
    ManagedKind("", "v1", "ResourceQuota", "resourcequotas"),
    ManagedKind("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False),
    ManagedKind("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False),
    ManagedKind("batch", "v1", "Job", "jobs"),
    ManagedKind("apps", "v1", "Deployment", "deployments", engine_phase=True),
    ManagedKind("apps", "v1", "StatefulSet", "statefulsets", engine_phase=True),
    ManagedKind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ManagedKind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    ManagedKind("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ManagedKind("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    ManagedKind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    ManagedKind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", engine_phase=True),
    ManagedKind("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", crd_hint="install KEDA", engine_phase=True),
    ManagedKind("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", crd_hint="install the Prometheus Operator"),
    ManagedKind("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", crd_hint="install the Prometheus Operator"),
    ManagedKind("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", crd_hint="install the Prometheus Operator"),
    ManagedKind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes",
                crd_hint="install the Gateway API CRDs (needed by spec.exposure.httpRoute)"),
    ManagedKind("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants",
                crd_hint="install the Gateway API CRDs (needed by spec.exposure.httpRoute.tls across namespaces)"),
    ManagedKind("cert-manager.io", "v1", "Certificate", "certificates",
                crd_hint="install cert-manager (needed by an exposure tls.issuer)"),
    ManagedKind(
        "leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets",
        crd_hint="install LeaderWorkerSet (needed by serving.mode multinode)", engine_phase=True,
    ),
    ManagedKind(
        "argoproj.io", "v1alpha1", "Rollout", "rollouts",
        crd_hint="install Argo Rollouts (needed by rollout.strategy argoCanary)", engine_phase=True,
    ),
)

_BY_KEY = {(k.api_version, k.kind): k for k in MANAGED_KINDS}

# Kinds whose status tells how many engine replicas are ready.
REPLICA_KINDS = frozenset({"Deployment", "StatefulSet", "LeaderWorkerSet", "Rollout"})


def kind_of(obj: dict[str, object]) -> ManagedKind:
    """The table entry for a rendered object; UnmanagedKindError for anything else."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    try:
        return _BY_KEY[key]
    except KeyError:
        raise UnmanagedKindError(*key) from None
