"""`kubellm install` manifests: least-privilege RBAC, a hardened Deployment, the CRD."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from kubellm.operator.install import cluster_rules, manifests
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.render.images import Images
from kubellm.render.security import tenant_grantable_rules


def _held(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_rbac_grants_no_wildcards_and_on_managed_kinds_only_apply_verbs_and_tenant_rules() -> None:
    for rule in cluster_rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    managed = {(k.group, k.plural) for k in MANAGED_KINDS}
    allowed = {(g, r, v) for g, r in managed for v in ["get", "list", "create", "patch", "delete"]}
    allowed |= _held(tenant_grantable_rules())
    assert {(g, r, v) for g, r, v in _held(cluster_rules()) if (g, r) in managed} <= allowed
    assert not any("secrets" in r["resources"] and "watch" in r["verbs"] for r in cluster_rules())


def test_the_operator_holds_every_rule_a_tenant_role_may_grant_and_cannot_escalate() -> None:
    """Without them the API server refuses the tenant Roles (tested for real in
    tests/integration/render/test_render_apiserver.py); bind/escalate would grant anything."""
    assert _held(tenant_grantable_rules()) <= _held(cluster_rules())
    assert not {v for _, r, v in _held(cluster_rules()) if r in ("roles", "clusterroles")} & {"bind", "escalate"}


def test_every_managed_kind_is_covered_by_a_rule() -> None:
    for kind in MANAGED_KINDS:
        assert any(kind.group in r["apiGroups"] and kind.plural in r["resources"] for r in cluster_rules()), kind


def test_manifests_start_with_the_crd_and_validate_against_kubernetes() -> None:
    docs = manifests("kubellm-system", Images(kubellm="example.com/kubellm:1"), 2)
    assert docs[0]["kind"] == "CustomResourceDefinition"
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31", strict=True)


@pytest.mark.parametrize("field", ["runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation"])
def test_operator_container_is_hardened(field: str) -> None:
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert field in container["securityContext"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def _walk(node: object) -> list[dict[str, object]]:
    if isinstance(node, list):
        return [n for item in node for n in _walk(item)]
    if not isinstance(node, dict):
        return []
    return [node, *[n for v in node.values() for n in _walk(v)]]


def test_installed_crd_has_nothing_the_api_server_refuses() -> None:
    """apiextensions rejects additionalProperties beside properties, and patternProperties
    (seen on a real kube-apiserver 1.34)."""
    crd = manifests()[0]
    for node in _walk(crd["spec"]["versions"][0]["schema"]):
        assert "patternProperties" not in node
        assert not ("properties" in node and "additionalProperties" in node)
