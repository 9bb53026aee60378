"""Marking rendered objects as the operator's: labels for pruning, owner references for
garbage collection. Pure functions over plain dicts."""

from __future__ import annotations

import copy
from typing import Any

from kubellm.operator.kinds import kind_of

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubellm"
SERVICE_LABEL = "kubellm.dev/service"
FIELD_MANAGER = "kubellm-operator"
CLI_FIELD_MANAGER = "kubellm-cli"
RETAINED_ANNOTATION = "kubellm.dev/retained"
"""On a cache claim kept after its LLMService was deleted (reclaimPolicy Retain)."""


def selector(name: str) -> dict[str, str]:
    """The labels every object of service *name* carries (used to list and prune them)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, SERVICE_LABEL: name}


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def stamp(obj: dict[str, Any], name: str, namespace: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of *obj* with our labels, its namespace, and (namespaced kinds, when there
    is an owner) an owner reference. Cluster-scoped objects cannot be owned by a namespaced
    LLMService; the finalizer deletes them by label."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**meta.get("labels", {}), **selector(name)}
    if kind_of(out).namespaced:
        meta["namespace"] = namespace
        if owner is not None:
            meta["ownerReferences"] = [owner_reference(owner)]
    else:
        meta.pop("namespace", None)
    return out


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what makes two objects the same object."""
    meta = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
