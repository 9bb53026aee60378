"""Every rendered object validates: built-in kinds against Kubernetes 1.31's OpenAPI schema
(kubernetes-validate, strict: unknown fields fail), custom resources against their upstream
CRD schemas vendored in crds/ (see crds/README.md), made strict the same way."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

CRD_DIR = Path(__file__).parent / "crds"
CUSTOM = {"ScaledObject", "PodMonitor", "ServiceMonitor", "PrometheusRule", "Rollout", "LeaderWorkerSet"}


def strict(node: Any) -> Any:
    """Forbid unknown fields wherever the CRD lists properties (the API server would prune
    them silently, hiding a typo)."""
    if isinstance(node, dict):
        node = {k: strict(v) for k, v in node.items()}
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        return node
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


@functools.cache
def _validator(group_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((CRD_DIR / f"{group_version}_{kind}.json").read_text())
    return jsonschema.Draft7Validator(strict(schema))


def crd_validator(obj: dict[str, Any]) -> jsonschema.Draft7Validator:
    return _validator(obj["apiVersion"].replace("/", "_"), obj["kind"])


def pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "Rollout":
        return [obj["spec"]["template"]]
    if obj["kind"] == "LeaderWorkerSet":
        lwt = obj["spec"]["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"], lwt["workerTemplate"]]
    return []


def test_every_builtin_object_validates_against_kubernetes_1_31(rendered: dict[str, list[dict[str, Any]]]) -> None:
    checked = 0
    for name, objects in rendered.items():
        for obj in objects:
            if obj["kind"] in CUSTOM:
                continue
            kubernetes_validate.validate(obj, "1.31", strict=True)
            checked += 1
    assert checked > 50


def test_every_custom_resource_validates_against_its_upstream_crd(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds_seen: set[str] = set()
    for name, objects in rendered.items():
        for obj in objects:
            if obj["kind"] not in CUSTOM:
                continue
            errors = [e.message for e in crd_validator(obj).iter_errors(obj)]
            assert not errors, f"{name}: {obj['kind']} {obj['metadata']['name']}: {errors}"
            kinds_seen.add(obj["kind"])
    assert kinds_seen == CUSTOM


def test_pod_templates_inside_custom_resources_validate_as_pod_templates(rendered: dict[str, list[dict[str, Any]]]) -> None:
    templates = [t for objects in rendered.values() for obj in objects for t in pod_templates(obj)]
    assert len(templates) == 3  # one Rollout, one LeaderWorkerSet (leader + worker)
    for template in templates:
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
        kubernetes_validate.validate(wrapper, "1.31", strict=True)


def test_a_misspelt_field_in_a_custom_resource_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    scaled = next(o for o in rendered["hf-autoscale"] if o["kind"] == "ScaledObject")
    broken = copy.deepcopy(scaled)
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")
    assert list(crd_validator(broken).iter_errors(broken))


def test_a_misspelt_field_in_a_builtin_object_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    deployment = next(o for o in rendered["quickstart"] if o["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.31", strict=True)
