"""Apply order: lightkube's ranking (CRDs, namespaces, things pods reference, RBAC), then
ours for the kinds it leaves unranked, then namespace and name, so output is stable."""

from __future__ import annotations

from lightkube.core.sort_objects import RANK_ORDER, UNKNOWN_ITEM_SORT_VALUE

from kubellm.render.context import Obj

# Cluster-wide policy and storage before workloads; workloads before what targets them.
EXTRA_RANK = {
    "StorageClass": 30,
    "Certificate": 36,
    "ReferenceGrant": 37,
    "ResourceQuota": 25,
    "PriorityClass": 26,
    "NetworkPolicy": 45,
    "Service": 50,
    "Job": 60,
    "Deployment": 70,
    "Rollout": 70,
    "LeaderWorkerSet": 70,
    "HorizontalPodAutoscaler": 80,
    "ScaledObject": 80,
    "PodDisruptionBudget": 85,
    "Ingress": 90,
    "HTTPRoute": 90,
    "PodMonitor": 95,
    "ServiceMonitor": 95,
    "PrometheusRule": 96,
}


def rank(obj: Obj) -> int:
    kind = str(obj["kind"])
    return RANK_ORDER.get(kind, EXTRA_RANK.get(kind, UNKNOWN_ITEM_SORT_VALUE))


def sort_key(obj: Obj) -> tuple[int, str, str, str]:
    meta = obj["metadata"]
    return rank(obj), str(obj["kind"]), str(meta.get("namespace", "")), str(meta["name"])


def apply_order(objects: list[Obj]) -> list[Obj]:
    return sorted(objects, key=sort_key)
