"""`kubellm render --argocd REPO_URL PATH -o DIR`: the rendered directory as an Argo CD
Application.

DIR is what gets committed at PATH in REPO_URL. Each object in it carries a sync wave
(``argocd.argoproj.io/sync-wave``) numbered in kubellm's apply order, so Argo CD applies
CRDs and namespaces first, then what pods reference, then workloads, then what targets
them, as `kubellm apply` does. The Application prunes and self-heals, applies server-side,
and ignores the fields another controller owns: the replica count of a workload an
autoscaler (HPA or KEDA ScaledObject) targets, and the gateway config whose canary weights
the operator steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.render.context import Obj, label_value
from kubellm.render.order import rank

WAVE = "argocd.argoproj.io/sync-wave"
ARGOCD_NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
SCALERS = {"HorizontalPodAutoscaler", "ScaledObject"}
OPERATOR_CONFIGMAP = "kubellm-gateway"  # the operator rewrites its canary weights


def with_waves(objects: Sequence[Obj]) -> list[Obj]:
    """Copies of *objects* (in apply order) annotated with consecutive waves, one per rank."""
    ranks = sorted({rank(obj) for obj in objects})
    waves = {value: index for index, value in enumerate(ranks)}
    out = []
    for obj in objects:
        meta = dict(obj["metadata"])
        meta["annotations"] = {**meta.get("annotations", {}), WAVE: str(waves[rank(obj)])}
        out.append({**obj, "metadata": meta})
    return out


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _replicas_owned(objects: Sequence[Obj]) -> list[Obj]:
    """ignoreDifferences entries for workloads an autoscaler sets the replicas of."""
    entries = []
    for scaler in (o for o in objects if o["kind"] in SCALERS):
        ref = scaler["spec"]["scaleTargetRef"]
        entry: Obj = {"group": _group(str(ref.get("apiVersion", "apps/v1"))), "jsonPointers": ["/spec/replicas"],
                      "kind": ref.get("kind", "Deployment"), "name": ref["name"]}
        if "namespace" in scaler["metadata"]:
            entry["namespace"] = scaler["metadata"]["namespace"]
        entries.append(entry)
    return entries


def _operator_owned(objects: Sequence[Obj]) -> list[Obj]:
    entries = []
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == OPERATOR_CONFIGMAP:
            entry: Obj = {"group": "", "jsonPointers": ["/data"], "kind": "ConfigMap", "name": OPERATOR_CONFIGMAP}
            if "namespace" in obj["metadata"]:
                entry["namespace"] = obj["metadata"]["namespace"]
            entries.append(entry)
    return entries


def _destination_namespace(objects: Sequence[Obj]) -> str:
    """The one namespace every namespaced object names, else default (each object names
    its own anyway; this is only for objects that name none)."""
    namespaces = {str(o["metadata"]["namespace"]) for o in objects if "namespace" in o["metadata"]}
    return namespaces.pop() if len(namespaces) == 1 else "default"


def application_name(service_names: Sequence[str], path: str) -> str:
    if len(service_names) == 1:
        return service_names[0]
    return label_value(path.strip("/").replace("/", "-")).lower() or "kubellm"


def application(objects: Sequence[Obj], repo_url: str, path: str, name: str) -> Obj:
    sync_options = ["ServerSideApply=true", "PruneLast=true", "RespectIgnoreDifferences=true",
                    # custom resources whose CRDs the same sync (or an add-on) installs
                    "SkipDryRunOnMissingResource=true"]
    spec: Obj = {
        "destination": {"namespace": _destination_namespace(objects), "server": IN_CLUSTER},
        "project": "default",
        "source": {"path": path, "repoURL": repo_url, "targetRevision": "HEAD"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                       "retry": {"backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}, "limit": 5},
                       "syncOptions": sync_options},
    }
    ignored = _replicas_owned(objects) + _operator_owned(objects)
    if ignored:
        spec["ignoreDifferences"] = ignored
    metadata = {"finalizers": ["resources-finalizer.argocd.argoproj.io"], "name": name, "namespace": ARGOCD_NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "kubellm"}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": metadata, "spec": spec}
