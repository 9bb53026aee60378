"""Small pure helpers of the handlers and the reconciler."""

from __future__ import annotations

from kubellm.operator.handlers import reclaim_policy, status_patch
from kubellm.operator.documents import spec_document
from kubellm.operator.reconcile import service_url


def test_status_patch_nulls_vanished_keys_and_roles_but_keeps_kopf_state() -> None:
    old = {"phase": "Available", "serviceUrl": "http://a", "roles": {"prefill": {}, "decode": {}}, "kopf": {"x": 1}}
    new = {"phase": "Progressing", "roles": {"engine": {"ready": 1}}}
    assert status_patch(old, new) == {
        "phase": "Progressing",
        "serviceUrl": None,
        "roles": {"prefill": None, "decode": None, "engine": {"ready": 1}},
    }


def test_reclaim_policy_defaults_to_delete() -> None:
    assert reclaim_policy({"spec": {}}) == "Delete"
    assert reclaim_policy({"spec": {"cache": {"storageClass": {"reclaimPolicy": "Retain"}}}}) == "Retain"


def test_spec_document_keeps_only_what_a_user_writes() -> None:
    body = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "spec": {"a": 1}, "status": {"phase": "x"},
            "metadata": {"name": "m", "namespace": "n", "uid": "u", "labels": {"l": "v"}, "managedFields": []}}
    assert spec_document(body) == {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                                   "metadata": {"name": "m", "namespace": "n", "labels": {"l": "v"}}, "spec": {"a": 1}}


def test_service_url_skips_headless_services() -> None:
    objects = [
        {"kind": "Service", "metadata": {"name": "m-headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 8000}]}},
        {"kind": "Service", "metadata": {"name": "m"}, "spec": {"ports": [{"port": 80}]}},
    ]
    assert service_url(objects, "llm") == "http://m.llm.svc:80"
    assert service_url(objects[:1], "llm") is None


def test_in_cluster_login_uses_the_service_address_from_the_environment() -> None:
    """kopf names https://kubernetes.default.svc (cluster DNS only); the pod's environment has
    the address (what client-go uses): a pod without working DNS still reaches the API."""
    import kopf

    from kubellm.operator.handlers import in_cluster_login

    info = kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="t", ca_path="/ca")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_login(info, env) == kopf.ConnectionInfo(server="https://10.96.0.1:443", token="t", ca_path="/ca")
    ipv6 = in_cluster_login(info, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"})
    assert ipv6 is not None and ipv6.server == "https://[fd00::1]:443"
    assert in_cluster_login(info, {}) is info
    assert in_cluster_login(None, env) is None
