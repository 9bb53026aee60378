"""Stamping (labels, owner references) and phase planning of rendered objects."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.operator.errors import UnmanagedKindError
from kubellm.operator.ownership import identity, selector, stamp
from kubellm.operator.plan import make_plan

OWNER = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "m", "uid": "u-1"}}


def obj(api_version: str, kind: str, name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **meta}}


def test_namespaced_objects_get_labels_namespace_and_a_controller_owner() -> None:
    out = stamp(obj("apps/v1", "Deployment", "m", namespace="other", labels={"a": "b"}), "m", "llm", OWNER)
    meta = out["metadata"]
    assert meta["namespace"] == "llm"
    assert meta["labels"] == {"a": "b", **selector("m")}
    assert meta["ownerReferences"] == [
        {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "name": "m", "uid": "u-1", "controller": True, "blockOwnerDeletion": True}
    ]


def test_cluster_scoped_objects_get_labels_but_no_owner_or_namespace() -> None:
    out = stamp(obj("storage.k8s.io/v1", "StorageClass", "m-cache", namespace="x"), "m", "llm", OWNER)
    assert "namespace" not in out["metadata"] and "ownerReferences" not in out["metadata"]
    assert out["metadata"]["labels"] == selector("m")


def test_without_owner_no_reference_is_set() -> None:
    assert "ownerReferences" not in stamp(obj("v1", "Service", "m"), "m", "llm", None)["metadata"]


def test_stamping_does_not_touch_the_input() -> None:
    original = obj("v1", "Service", "m")
    stamp(original, "m", "llm", OWNER)
    assert original == obj("v1", "Service", "m")


def test_unknown_kinds_are_refused_by_name() -> None:
    with pytest.raises(UnmanagedKindError, match="CronJob"):
        stamp(obj("batch/v1", "CronJob", "x"), "m", "llm", OWNER)


def test_engines_and_their_scalers_wait_for_the_cache_phase() -> None:
    objects = [
        obj("v1", "PersistentVolumeClaim", "m-cache"),
        obj("batch/v1", "Job", "m-load-abc"),
        obj("apps/v1", "Deployment", "m"),
        obj("keda.sh/v1alpha1", "ScaledObject", "m"),
        obj("v1", "Service", "m"),
    ]
    plan = make_plan(objects)
    assert [o["kind"] for o in plan.cache_phase] == ["PersistentVolumeClaim", "Job", "Service"]
    assert [o["kind"] for o in plan.engine_phase] == ["Deployment", "ScaledObject"]
    assert [o["metadata"]["name"] for o in plan.loader_jobs] == ["m-load-abc"]


def test_digest_changes_with_content_only() -> None:
    a = [obj("v1", "Service", "m")]
    assert make_plan(a).digest == make_plan([obj("v1", "Service", "m")]).digest
    assert make_plan(a).digest != make_plan([obj("v1", "Service", "n")]).digest


def test_identity_includes_namespace() -> None:
    assert identity(obj("v1", "Service", "m", namespace="a")) != identity(obj("v1", "Service", "m", namespace="b"))
