"""Rendered objects against a real kube-apiserver (v1.34, built from source by the operator's
setup script; kwok stands in for kubelets, nothing else is simulated):

- every built-in object of every example passes the server's own validation (server-side
  dry run: semantic rules the OpenAPI schema cannot express, such as quantities, label
  values, selector/template agreement);
- tenant Roles can be created by a client holding `tenant_grantable_rules()` and nothing
  more, and Kubernetes' escalation check refuses a client holding less;
- every pod of every example (GPU engines included) is admitted by PodSecurity admission
  enforcing the "restricted" standard.
Custom resources are not sent (their add-ons are not installed here); the unit tests check
them against the upstream CRD schemas."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.operator.testing import ControlPlane
from kubellm.render import render
from kubellm.render.security import TENANT_RULES, tenant_grantable_rules
from kubellm.spec import load_spec
from tests.integration.planes import started_plane

pytestmark = pytest.mark.controlplane
ROOT = Path(__file__).resolve().parents[3]
CORE_GROUPS = {"v1": "/api/v1"}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with started_plane(tmp_path_factory) as control_plane:
        yield control_plane


def collection_url(obj: dict[str, Any]) -> str:
    api_version = obj["apiVersion"]
    base = CORE_GROUPS.get(api_version, f"/apis/{api_version}")
    plural = {"Ingress": "ingresses", "NetworkPolicy": "networkpolicies", "StorageClass": "storageclasses",
              "ResourceQuota": "resourcequotas", "PodDisruptionBudget": "poddisruptionbudgets"}.get(
        obj["kind"], obj["kind"].lower() + "s")
    namespace = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def ensure_namespace(client: httpx.Client, name: str) -> None:
    response = client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert response.status_code in (201, 409), response.text


def test_every_builtin_object_passes_server_side_validation(plane: ControlPlane) -> None:
    checked = 0
    with plane.http() as client:
        for path in sorted((ROOT / "examples").glob("*.yaml")):
            for obj in render(load_spec(path), "1.34"):
                if obj["apiVersion"].split("/")[0] in ("keda.sh", "monitoring.coreos.com", "argoproj.io", "leaderworkerset.x-k8s.io"):
                    continue
                if "namespace" in obj["metadata"]:
                    ensure_namespace(client, obj["metadata"]["namespace"])
                response = client.post(collection_url(obj), params={"dryRun": "All", "fieldValidation": "Strict"}, json=obj)
                assert response.status_code == 201, f"{path.stem}: {obj['kind']} {obj['metadata']['name']}: {response.text}"
                checked += 1
    assert checked > 100


def _client_with_rules(plane: ControlPlane, name: str, rules: list[dict[str, Any]]) -> httpx.Client:
    """An HTTP client authenticated as a fresh ServiceAccount bound to exactly *rules*
    (plus creating Roles and RoleBindings)."""
    manage = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get"]}
    with plane.http() as admin:
        ensure_namespace(admin, "appliers")
        admin.post("/api/v1/namespaces/appliers/serviceaccounts", json={"metadata": {"name": name}}).raise_for_status()
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": [*rules, manage]}
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", json=role).raise_for_status()
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "appliers"}]}
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding).raise_for_status()
    config = yaml.safe_load(plane.service_account_kubeconfig("appliers", name).read_text())
    token = config["users"][0]["user"]["token"]
    ca = config["clusters"][0]["cluster"]["certificate-authority"]
    return httpx.Client(base_url=plane.server, verify=ssl.create_default_context(cafile=ca),
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_tenant_roles_need_exactly_the_grantable_rules(plane: ControlPlane) -> None:
    objects = render(load_spec(ROOT / "examples" / "llama-13b-tp2-tls.yaml"), "1.34")
    rbac = [o for o in objects if o["kind"] in ("Role", "RoleBinding")]
    assert len(rbac) == 4
    with plane.http() as admin:
        ensure_namespace(admin, "team-llm")
    with _client_with_rules(plane, "applier-full", tenant_grantable_rules()) as client:
        for obj in rbac:
            response = client.post(collection_url(obj), json=obj)
            assert response.status_code == 201, response.text
    operate_role = next(o for o in rbac if o["kind"] == "Role" and o["rules"] == TENANT_RULES["operate"])
    renamed = {**operate_role, "metadata": {**operate_role["metadata"], "name": "second-try"}}
    with _client_with_rules(plane, "applier-view-only", TENANT_RULES["view"]) as client:
        response = client.post(collection_url(renamed), json=renamed)
    assert response.status_code == 403 and "not currently held" in response.text


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Pod templates of a workload, built-in or custom (Rollout, LeaderWorkerSet)."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "LeaderWorkerSet":
        lws = spec["leaderWorkerTemplate"]
        return [t for t in (lws.get("leaderTemplate"), lws.get("workerTemplate")) if t]
    if obj["kind"] == "Job":
        return [spec["template"]]
    return [spec["template"]] if "template" in spec and "spec" in spec["template"] else []


def _ensure_priority_class(client: httpx.Client, name: str | None) -> None:
    """A cluster's own object the spec names (spec.resources.priorityClassName)."""
    if name:
        body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000}
        response = client.post("/apis/scheduling.k8s.io/v1/priorityclasses", json=body)
        assert response.status_code in (201, 409), response.text


def _dry_run_pod(client: httpx.Client, namespace: str, pod: dict[str, Any]) -> httpx.Response:
    """Create *pod* with dryRun; a PriorityClass created a moment ago may not be in the Priority
    admission plugin's informer cache yet (seen on a loaded machine), so that refusal is
    retried for a few seconds; any other answer is returned as it is."""
    deadline = time.monotonic() + 10
    while True:
        response = client.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"}, json=pod)
        if response.status_code != 403 or "no PriorityClass with name" not in response.text or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_every_pod_of_every_example_is_admitted_under_pod_security_restricted(plane: ControlPlane) -> None:
    """The API server's own PodSecurity admission, enforcing "restricted" (latest) on the
    namespace, admits every pod the examples would run: engines (GPU ones included), loader
    Jobs, multinode leaders and workers, canaries."""
    admitted, refused = 0, []
    with plane.http() as client:
        for path in sorted((ROOT / "examples").glob("*.yaml")):
            namespace = f"pss-{path.stem}"
            labels = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}
            response = client.post("/api/v1/namespaces", json={"metadata": {"name": namespace, "labels": labels}})
            assert response.status_code in (201, 409), response.text
            objects = render(load_spec(path), "1.34")
            for account in (o for o in objects if o["kind"] == "ServiceAccount"):
                body = {**account, "metadata": {"name": account["metadata"]["name"], "namespace": namespace}}
                response = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json=body)
                assert response.status_code in (201, 409), response.text
            for obj in objects:
                for index, template in enumerate(_pod_templates(obj)):
                    _ensure_priority_class(client, template["spec"].get("priorityClassName"))
                    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                           "metadata": {"name": f"{obj['metadata']['name']}-{index}"[:63], "namespace": namespace}}
                    response = _dry_run_pod(client, namespace, pod)
                    if response.status_code == 201:
                        admitted += 1
                    else:
                        refused.append(f"{path.stem}: {obj['kind']} {obj['metadata']['name']}: {response.text}")
    assert not refused, "\n".join(refused)
    assert admitted >= 15  # every example has at least one pod; most have a loader too
    # The namespaces do enforce it: the same pod with one container allowed to escalate is refused.
    template = _pod_templates(next(o for o in render(load_spec(ROOT / "examples" / "quickstart.yaml"), "1.34")
                                   if o["kind"] == "Deployment"))[0]
    spec = {**template["spec"], "containers": [{**c, "securityContext": {**c["securityContext"], "allowPrivilegeEscalation": True}}
                                               for c in template["spec"]["containers"]]}
    with plane.http() as client:
        response = client.post("/api/v1/namespaces/pss-quickstart/pods", params={"dryRun": "All"},
                               json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "escalates"}, "spec": spec})
    assert response.status_code == 403 and "violates PodSecurity" in response.text, response.text
