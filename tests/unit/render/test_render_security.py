"""Secure defaults hold for every pod of every example: Pod Security Standard "restricted"
fields, no service account token, resources with limits, probes; a default-deny policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubellm.render import render
from kubellm.spec import LLMService

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


# Volume types the "restricted" profile allows, plus OCI image volumes (read-only by design).
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret", "image"}


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "Job", "Rollout"):
        return [spec["template"]["spec"]]
    if obj["kind"] == "LeaderWorkerSet":
        lwt = spec["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]
    return []


def test_every_pod_meets_the_restricted_profile(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pods = [p for objects in rendered.values() for o in objects for p in pod_specs(o)]
    assert len(pods) > 15
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] >= 10000
        assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC"))
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"] == RESTRICTED_CONTAINER
            assert container["resources"]["limits"] == container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        for volume in pod["volumes"]:
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, kinds


def test_engines_have_probes_and_gpus_only_where_asked(rendered: dict[str, list[dict[str, Any]]]) -> None:
    quickstart = next(o for o in rendered["quickstart"] if o["kind"] == "Deployment")
    engine = quickstart["spec"]["template"]["spec"]["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(engine)
    assert "nvidia.com/gpu" not in engine["resources"]["limits"]
    mistral = next(o for o in rendered["mistral-7b-l4-gcs"] if o["kind"] == "Deployment")
    pod = mistral["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_every_example_has_a_default_deny_policy_and_a_tokenless_service_account(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in rendered.items():
        deny = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-default-deny")]
        assert len(deny) == 1, name
        assert deny[0]["spec"]["ingress"] == [] and deny[0]["spec"]["egress"] == []
        account = next(o for o in objects if o["kind"] == "ServiceAccount")
        assert account["automountServiceAccountToken"] is False


def test_credentials_reach_the_loader_as_files_not_environment_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    job = next(o for o in rendered["hf-autoscale"] if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] + container["args"][:1] == ["kubellm", "pull"]
    assert {"name": "credentials", "secret": {"secretName": "hf-token", "defaultMode": 0o440}} in pod["volumes"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN_PATH"]["value"].endswith("/HF_TOKEN")
    assert all("valueFrom" not in e for e in env.values())


def test_tenant_roles_grant_only_what_the_applier_is_told_to_hold(rendered: dict[str, list[dict[str, Any]]]) -> None:
    from kubellm.render.security import tenant_grantable_rules

    held = {(g, r, v) for rule in tenant_grantable_rules() for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    roles = [o for objects in rendered.values() for o in objects if o["kind"] == "Role"]
    assert len(roles) == 2  # llama-13b-tp2-tls: one view, one operate tenant
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert (group, resource, verb) in held


def test_loader_egress_ports_follow_the_spec(example_specs: dict[str, LLMService]) -> None:
    """Policies match the port the source's pod listens on, so an in-cluster MinIO on 9000
    needs it named; the default stays HTTPS and HTTP."""
    base = example_specs["mistral-7b-l4-gcs"]
    for ports, expected in (((), None), ((9000,), [9000]), ((443, 9000), [443, 9000])):
        data = base.model_dump(by_alias=True, exclude_none=True)
        if ports:
            data["spec"].setdefault("security", {}).setdefault("networkPolicy", {})["allowEgressPorts"] = list(ports)
        loader = next(o for o in render(LLMService.model_validate(data), "1.31")
                      if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-loader"))
        allowed = [p["port"] for rule in loader["spec"]["egress"] for p in rule.get("ports", []) if p["port"] != 53]
        assert allowed == (expected or [443, 80])


def test_loader_egress_ports_out_of_range_are_refused(example_specs: dict[str, LLMService]) -> None:
    data = example_specs["quickstart"].model_dump(by_alias=True, exclude_none=True)
    for bad in ([], [0], [70000]):
        data["spec"].setdefault("security", {}).setdefault("networkPolicy", {})["allowEgressPorts"] = bad
        with pytest.raises(ValidationError, match="allowEgressPorts"):
            LLMService.model_validate(data)


def _from_namespaces(policy: dict[str, Any]) -> set[str]:
    return {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["spec"]["ingress"] for peer in rule.get("from", []) if "namespaceSelector" in peer}


def test_the_operator_namespace_is_let_in_only_when_the_operator_scales(example_specs: dict[str, LLMService]) -> None:
    """With scaling.backend operator the operator reads the engines' and the gateway's gauges
    (a default-deny cluster refused it); with KEDA or an HPA it has no business there."""
    from kubellm.render.gateway_network import client_namespaces

    base = example_specs["quickstart"].model_dump(by_alias=True, exclude_none=True)
    for backend, namespace, admitted in (("keda", None, False), ("operator", None, True), ("operator", "ops", True)):
        data = {**base, "spec": {**base["spec"], "scaling": {**base["spec"].get("scaling", {}), "backend": backend}}}
        if namespace:
            data["spec"]["security"] = {"networkPolicy": {"operatorNamespace": namespace}}
        svc = LLMService.model_validate(data)
        engine = next(o for o in render(svc, "1.31")
                      if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-engine"))
        expected = namespace or "kubellm-system"
        assert (expected in _from_namespaces(engine)) is admitted
        assert (expected in client_namespaces([svc], "monitoring")) is admitted
