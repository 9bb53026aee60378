"""What `kubellm install` puts in a cluster: the LLMService CRD, the operator's
ServiceAccount, least-privilege RBAC and its Deployment. Pure: manifests as dicts.

RBAC lists only what the operator does: for each managed kind, the verbs of apply, read and
prune (get list create patch delete); LLMService get/list/watch/patch and its status;
Events; reading CRDs (to know which add-ons are served); its own Lease. Plus exactly the
rules a rendered tenant Role may grant (``tenant_grantable_rules``): Kubernetes refuses to
let anyone create a Role granting more than it holds (RBAC escalation check), and ``bind``
or ``escalate`` on roles would let the operator grant anything at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.render.images import DEFAULT_IMAGES, KUBELLM_IMAGE, Images, images_env
from kubellm.render.gateway import DISCOVERY_RULES
from kubellm.render.security import tenant_grantable_rules
from kubellm.spec.schema import GROUP, PLURAL, crd

NAME = "kubellm-operator"
DEFAULT_IMAGE = KUBELLM_IMAGE
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "kubellm"}
_APPLY_VERBS = ["get", "list", "create", "patch", "delete"]


def _servable(node: Any) -> Any:
    """What the API server accepts of a schema node: no ``additionalProperties`` beside
    ``properties`` (apiextensions rejects the pair; unknown fields are pruned instead) and no
    ``patternProperties`` (unsupported). A no-op once ``kubellm.spec.schema.crd`` emits
    neither; kept here so `kubellm install` never sends a CRD the server refuses."""
    if isinstance(node, list):
        return [_servable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _servable(v) for k, v in node.items() if k != "patternProperties"}
    if "properties" in out and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def llmservice_crd() -> dict[str, Any]:
    """The LLMService CRD generated from the spec models, in the form the API server serves."""
    return dict(_servable(crd()))


def cluster_rules() -> list[dict[str, Any]]:
    by_group: dict[str, list[str]] = {}
    for kind in MANAGED_KINDS:
        by_group.setdefault(kind.group, []).append(kind.plural)
    rules = [{"apiGroups": [g], "resources": sorted(set(r)), "verbs": _APPLY_VERBS} for g, r in sorted(by_group.items())]
    return rules + [
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]},
    ] + tenant_grantable_rules() + gateway_role_rules()


def gateway_role_rules() -> list[dict[str, Any]]:
    """What each namespace's gateway Role grants: the operator must hold it to create it."""
    return [dict(rule) for rule in DISCOVERY_RULES]


def lease_rules() -> list[dict[str, Any]]:
    return [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(kind: str, namespace: str | None, role_kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(NAME, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": NAME},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace or ""}],
    }


def _container(images: Images, namespace: str, operator_args: Sequence[str]) -> dict[str, Any]:
    # The operator renders with the images it was installed with (images_env): what it
    # deploys runs the image it runs itself.
    return {
        "name": "operator",
        "image": images.kubellm,
        "args": ["operator", f"--lease-namespace={namespace}", *operator_args],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, *images_env(images)],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def deployment(namespace: str, images: Images, replicas: int, operator_args: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [_container(images, namespace, operator_args)],
                    # The root filesystem is read-only; HOME and TMPDIR point here (docs/image.md).
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }


def namespace_object(namespace: str) -> dict[str, Any]:
    """The operator's namespace, admitting only pods that meet the restricted Pod Security
    Standard (the operator's own does: non-root, no privilege escalation, no capabilities,
    RuntimeDefault seccomp)."""
    meta = _meta(namespace)
    meta["labels"] |= {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def manifests(namespace: str = "kubellm-system", images: Images = DEFAULT_IMAGES, replicas: int = 2,
              operator_args: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Everything to install, in a safe apply order (CRD and Namespace first); *operator_args*
    are added to the operator's command line (the --gateway-* flags, gatewayflags.py)."""
    return [
        llmservice_crd(),
        namespace_object(namespace),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, namespace)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(NAME), "rules": cluster_rules()},
        _binding("ClusterRoleBinding", namespace, "ClusterRole"),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(NAME, namespace), "rules": lease_rules()},
        _binding("RoleBinding", namespace, "Role"),
        deployment(namespace, images, replicas, operator_args),
    ]
