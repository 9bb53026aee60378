"""Chaos: the operator is SIGKILLed at random moments while it reconciles (ten times, with
the specs changing in between); once it runs undisturbed, the cluster holds exactly the
objects the specs render to, every one owned by a live LLMService, nothing orphaned.

The expected objects come from the renderer directly, not from anything the operator wrote.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.gateway.fromspec import GATEWAY_CONFIGMAP, gateway_configmap
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for
from kubellm.render import render
from kubellm.render.gateway import gateway_objects
from kubellm.spec import parse_spec

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

API = "/apis/kubellm.dev/v1alpha1"
ADDON_GROUPS = {"keda.sh", "monitoring.coreos.com", "leaderworkerset.x-k8s.io", "argoproj.io",  # not served here
                "gateway.networking.k8s.io", "cert-manager.io"}


def spec(name: str, model: str, replicas: int, gpu: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": {"uri": model}, "scaling": {"minReplicas": replicas}}
    body["engine"] = {"kind": "vllm"} if gpu else {"kind": "sim"}
    if gpu:
        body["resources"] = {"accelerator": {"type": "NVIDIA-L4", "count": 1}}
    return {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name}, "spec": body}


def expected_objects(specs: dict[str, dict[str, Any]], ns: str) -> set[tuple[str, str]]:
    found = set()
    for body in specs.values():
        for obj in render(parse_spec(body), "1.34"):
            if obj["apiVersion"].split("/")[0] not in ADDON_GROUPS:
                found.add((obj["kind"], obj["metadata"]["name"]))
    # the namespace's gateway, with its config, owned by all its services
    services = [parse_spec({**b, "metadata": {**b["metadata"], "namespace": ns}}) for b in specs.values()]
    gateway = {(o["kind"], o["metadata"]["name"]) for o in gateway_objects(ns, services, target=(1, 34))
               if o["apiVersion"].split("/")[0] not in ADDON_GROUPS}
    return found | gateway | {("ConfigMap", GATEWAY_CONFIGMAP)}


def live_objects(client: httpx.Client, ns: str) -> list[dict[str, Any]]:
    found = []
    for kind in MANAGED_KINDS:
        if kind.group in ADDON_GROUPS:
            continue
        prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else "/api/v1"
        path = f"{prefix}/namespaces/{ns}/{kind.plural}" if kind.namespaced else f"{prefix}/{kind.plural}"
        for obj in client.get(path, params={"labelSelector": "app.kubernetes.io/managed-by=kubellm"}).json()["items"]:
            if not kind.namespaced and not obj["metadata"]["labels"].get("kubellm.dev/service", "").startswith("chaos-"):
                continue  # cluster-scoped objects of other tests
            found.append({**obj, "kind": kind.kind})
    return found


def all_settled(client: httpx.Client, ns: str, names: set[str]) -> bool:
    items = client.get(f"{API}/namespaces/{ns}/llmservices").json()["items"]
    if {i["metadata"]["name"] for i in items} != names:
        return False
    return all(
        (i.get("status") or {}).get("phase") == "Available"
        and i["status"].get("observedGeneration") == i["metadata"]["generation"]
        and any(c["type"] == "Progressing" and c["status"] == "False" for c in i["status"]["conditions"])
        for i in items
    )


def apply(plane: ControlPlane, tmp: Path, body: dict[str, Any], ns: str) -> None:
    path = tmp / f"{body['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(body))
    kubellm(plane, "apply", str(path), "--resource", "-n", ns)


def _handling(log: Path, offset: int) -> int:
    """1 if the operator run logged since *offset* had started reconciling (kopf logs each
    handler it ends; the operator logs each pass over a changed object as it starts), else 0."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read()
    return int(b"kopf.objects" in text or b"kubellm.operator reconciling " in text)


def test_sigkill_during_reconciliation_ten_times_converges_without_orphans(
    control_plane: ControlPlane, operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(20261123)
    specs = {
        "chaos-sim": spec("chaos-sim", "sim://tiny-chat", 1, gpu=False),
        "chaos-gpu": spec("chaos-gpu", "hf://org/model-0", 1, gpu=True),
    }
    for body in specs.values():
        apply(control_plane, tmp_path, body, namespace)
    log = tmp_path / "operator.log"
    as_operator: dict[str, Any] = {"kubeconfig": operator_kubeconfig, "lease_namespace": "kubellm-system"}
    killed_while_handling = 0
    with control_plane.http() as client:
        for round_ in range(10):
            # Change something every round: a model (new loader Job, engines wait), replicas,
            # a service appearing or being deleted (finalizer, garbage collection).
            change = round_ % 4
            if change == 0:
                specs["chaos-gpu"] = spec("chaos-gpu", f"hf://org/model-{round_}", 1, gpu=True)
                apply(control_plane, tmp_path, specs["chaos-gpu"], namespace)
            elif change == 1:
                specs["chaos-sim"] = spec("chaos-sim", "sim://tiny-chat", rng.randint(1, 3), gpu=False)
                apply(control_plane, tmp_path, specs["chaos-sim"], namespace)
            elif change == 2:
                specs["chaos-extra"] = spec("chaos-extra", "sim://other", 1, gpu=False)
                apply(control_plane, tmp_path, specs["chaos-extra"], namespace)
            elif "chaos-extra" in specs:
                del specs["chaos-extra"]
                client.delete(f"{API}/namespaces/{namespace}/llmservices/chaos-extra")
            offset = log.stat().st_size if log.exists() else 0
            operator = OperatorProcess(control_plane, log, "chaos-operator", **as_operator).start()
            time.sleep(rng.uniform(1.0, 5.0))  # start-up, lease, mid-apply, mid-prune...
            assert operator.popen is not None and operator.popen.poll() is None, f"operator died:\n{operator.tail()}"
            operator.kill()
            killed_while_handling += _handling(log, offset)

        # Most kills must land after the operator began handling objects, not during start-up.
        assert killed_while_handling >= 5, f"only {killed_while_handling} of 10 kills hit a running reconciliation"
        final = OperatorProcess(control_plane, log, "chaos-operator", **as_operator).start()
        try:
            wait_for(lambda: all_settled(client, namespace, set(specs)), 120, f"convergence\n{final.tail()}")
            expected = expected_objects(specs, namespace)
            # Pruning and garbage collection finish shortly after the status settles.
            wait_for(lambda: {(o["kind"], o["metadata"]["name"]) for o in live_objects(client, namespace)} == expected,
                     60, "exactly the rendered objects")
            uids = {i["metadata"]["uid"] for i in client.get(f"{API}/namespaces/{namespace}/llmservices").json()["items"]}
            for obj in live_objects(client, namespace):
                owners = obj["metadata"].get("ownerReferences") or []
                if obj["metadata"]["name"] == GATEWAY_CONFIGMAP:  # the gateway: one per namespace, owned by all its services
                    assert sorted(o["uid"] for o in owners if not o.get("controller")) == sorted(uids), obj["metadata"]
                elif obj["kind"] != "StorageClass":
                    assert [o["uid"] for o in owners if o.get("controller")] and owners[0]["uid"] in uids, obj["metadata"]
            # ...and the gateway config is that of the live services, however the kills fell
            live_config = client.get(f"/api/v1/namespaces/{namespace}/configmaps/{GATEWAY_CONFIGMAP}").json()["data"]
            services = [parse_spec({**b, "metadata": {**b["metadata"], "namespace": namespace}}) for b in specs.values()]
            assert live_config == gateway_configmap(namespace, services)["data"]
            jobs = client.get(f"/apis/batch/v1/namespaces/{namespace}/jobs").json()["items"]
            assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
        finally:
            final.stop()
