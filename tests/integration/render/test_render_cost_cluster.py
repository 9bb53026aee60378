"""spec.cost against a real control plane (kube-apiserver, controller-manager and scheduler
v1.34 built from source; kwok stands in for kubelets and for the NVIDIA device plugin, i.e.
the nodes advertise `nvidia.com/gpu.shared` themselves: no GPU here):

- every cost object (PriorityClass, device-plugin ConfigMaps, PodDisruptionBudget with a
  floor, Deployment with spot affinity, tolerations and shared-GPU requests) passes a strict
  server-side dry run, and the PrometheusRule with the budget alerts (and the PodMonitor)
  passes one against the upstream CRDs (prometheus-operator v0.76.0's schemas, vendored for
  the unit tests);
- the real scheduler places the rendered engine pods as asked: on an on-demand node when
  no spot node exists (fallback), on a tainted spot node (toleration), on the spot node when
  both have room (preference); a pod of a spec without spec.cost.spot stays off the
  tainted spot node;
- the rendered PriorityClass makes a serving pod pre-empt a batch pod holding the last
  shared GPU slice; without it the serving pod waits;
- the PodDisruptionBudget floor lets a drain (after a spot reclaim notice) evict one pod and
  refuses the next eviction that would go below minAvailable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.apiserver import dry_run, install_crd
from kubellm.operator.testing.harness import wait_for
from kubellm.operator.testing.nodes import GpuNodeSpec, gpu_node
from kubellm.render import render
from kubellm.spec import parse_spec
from tests.integration.planes import started_plane

pytestmark = pytest.mark.controlplane
PLURALS = {"NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets",
           "PriorityClass": "priorityclasses", "PrometheusRule": "prometheusrules", "PodMonitor": "podmonitors"}
UNIT_CRDS = Path(__file__).resolve().parents[2] / "unit" / "render" / "crds"
SHARED = "nvidia.com/gpu.shared"
SPOT_LABEL, SPOT_TAINT = "cloud.google.com/gke-spot", {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"}


def crd_from_schema(group: str, kind: str, plural: str, schema_file: str) -> dict[str, Any]:
    """An upstream CRD rebuilt around its vendored openAPIV3Schema (see unit/render/crds)."""
    schema = json.loads((UNIT_CRDS / schema_file).read_text())
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": [version],
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"}}}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with started_plane(tmp_path_factory) as control_plane:
        with control_plane.http() as http:
            for kind in ("PrometheusRule", "PodMonitor"):
                install_crd(http, crd_from_schema("monitoring.coreos.com", kind, f"{kind.lower()}s",
                                                  f"monitoring.coreos.com_v1_{kind}.json"))
        yield control_plane


@pytest.fixture
def http(plane: ControlPlane) -> Iterator[httpx.Client]:
    with plane.http() as client:
        yield client


def ensure_namespace(http: httpx.Client, name: str) -> None:
    response = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert response.status_code in (201, 409), response.text


def service(namespace: str, cost: dict[str, Any], replicas: int = 1, name: str = "small") -> list[dict[str, Any]]:
    """A sim engine asking for one GPU (a slice of one, with sharing): no weights cache, so
    its pods need nothing but a node."""
    spec = {"model": {"uri": "sim://small"}, "engine": {"kind": "sim"}, "resources": {"accelerator": {"count": 1}},
            "scaling": {"minReplicas": replicas}, "cost": cost}
    doc = {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name, "namespace": namespace},
           "spec": spec}
    return render(parse_spec(doc), "1.34")


def collection(obj: dict[str, Any]) -> str:
    api, kind = obj["apiVersion"], obj["kind"]
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    plural = PLURALS.get(kind, kind.lower() + "s")
    namespace = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def create(http: httpx.Client, objects: list[dict[str, Any]], kinds: set[str]) -> None:
    for obj in objects:
        if obj["kind"] in kinds:
            response = http.post(collection(obj), json=obj)
            assert response.status_code in (201, 409), f"{obj['kind']} {obj['metadata']['name']}: {response.text}"


def add_node(http: httpx.Client, name: str, slices: int, spot: bool) -> None:
    """A kwok node with one GPU advertised as *slices* shared slices (what the device plugin's
    time-slicing config makes a node advertise); a spot node is labelled and tainted as GKE does."""
    node = gpu_node(name, GpuNodeSpec(gpus=1, labels={SPOT_LABEL: "true"} if spot else {}))
    for field in ("capacity", "allocatable"):
        node["status"][field][SHARED] = str(slices)
    if spot:
        node["spec"]["taints"].append(SPOT_TAINT)
    response = http.post("/api/v1/nodes", json=node)
    assert response.status_code == 201, response.text

    def ready() -> bool:
        status = http.get(f"/api/v1/nodes/{name}").json().get("status", {})
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))

    wait_for(ready, 60, f"node {name} Ready")


class Cluster:
    """The namespaces and nodes one test makes; removed afterwards (engines first, so no
    Deployment re-creates pods on the next test's nodes), so each test sees only its own."""

    def __init__(self, http: httpx.Client) -> None:
        self.http, self.namespaces, self.nodes = http, list[str](), list[str]()

    def namespace(self, name: str) -> str:
        ensure_namespace(self.http, name)
        self.namespaces.append(name)
        return name

    def node(self, name: str, slices: int, spot: bool) -> str:
        add_node(self.http, name, slices, spot)
        self.nodes.append(name)
        return name

    def clean(self) -> None:
        for namespace in self.namespaces:
            self.http.request("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                              json={"propagationPolicy": "Foreground"})
            self.http.request("DELETE", f"/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": 0})
        for namespace in self.namespaces:
            wait_for(lambda ns=namespace: not pods(self.http, ns, ""), 60, f"no pods left in {namespace}")
        for name in self.nodes:
            self.http.delete(f"/api/v1/nodes/{name}")


@pytest.fixture
def cluster(http: httpx.Client) -> Iterator[Cluster]:
    made = Cluster(http)
    yield made
    made.clean()


def pods(http: httpx.Client, namespace: str, selector: str = "app.kubernetes.io/component=engine") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(f"/api/v1/namespaces/{namespace}/pods",
                                           params={"labelSelector": selector}).json()["items"]
    return items


def placed(http: httpx.Client, namespace: str, count: int) -> list[str]:
    """The nodes of *count* scheduled engine pods (waits for them)."""
    def nodes_of() -> list[str] | None:
        found = [p["spec"].get("nodeName") for p in pods(http, namespace)]
        return sorted(found) if len(found) == count and all(found) else None

    result: list[str] = wait_for(nodes_of, 60, f"{count} engine pods scheduled in {namespace}")
    return result


def unschedulable(http: httpx.Client, namespace: str) -> bool:
    def condition() -> bool:
        return any(c.get("reason") == "Unschedulable" for p in pods(http, namespace)
                   for c in p.get("status", {}).get("conditions", []))

    return bool(wait_for(condition, 60, f"an Unschedulable engine pod in {namespace}"))


COST = {"spot": {"provider": "gke"}, "priorityClass": {}, "gpuSharing": {"mode": "timeSlicing", "replicas": 2},
        "budget": {"acceleratorHours": 100, "window": "7d"}}


def test_every_cost_object_passes_a_strict_server_side_dry_run(http: httpx.Client) -> None:
    objects = service("cost-dry-run", {**COST, "spot": {"provider": "gke", "minAvailable": 1}}, replicas=2)
    sent = {o["kind"] for o in objects}
    assert {"PriorityClass", "ConfigMap", "PodDisruptionBudget", "Deployment", "PrometheusRule"} <= sent
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh"):
            continue
        if "namespace" in obj["metadata"]:
            ensure_namespace(http, obj["metadata"]["namespace"])
        response = dry_run(http, obj, PLURALS)
        assert response.status_code == 201, f"{obj['kind']} {obj['metadata']['name']}: {response.text}"
    # The check can fail: a misspelt field in the budget rule is refused by the CRD's schema.
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][-1]["rules"][0]["fore"] = "15m"
    refused = dry_run(http, broken, PLURALS)
    assert refused.status_code == 400, refused.text
    assert 'unknown field "spec.groups[1].rules[0].fore"' in refused.json()["message"], refused.text


def test_pods_fall_back_to_on_demand_when_no_spot_node_exists(http: httpx.Client, cluster: Cluster) -> None:
    cluster.namespace("fallback")
    cluster.node("fallback-on-demand", slices=2, spot=False)
    create(http, service("fallback", COST, replicas=2), {"ServiceAccount", "PriorityClass", "Deployment"})
    assert placed(http, "fallback", 2) == ["fallback-on-demand"] * 2


def test_the_spot_taint_is_tolerated_and_spot_preferred_when_both_have_room(http: httpx.Client, cluster: Cluster) -> None:
    cluster.namespace("prefer")
    for name, spot in (("prefer-spot", True), ("prefer-on-demand", False)):
        cluster.node(name, slices=2, spot=spot)
    create(http, service("prefer", COST), {"ServiceAccount", "PriorityClass", "Deployment"})
    assert placed(http, "prefer", 1) == ["prefer-spot"]
    # without spec.cost.spot, nothing tolerates the spot taint: the same pod may use only on-demand
    cluster.namespace("no-spot")
    create(http, service("no-spot", {"gpuSharing": {"mode": "timeSlicing", "replicas": 2}}, replicas=2),
           {"ServiceAccount", "Deployment"})
    assert placed(http, "no-spot", 2) == ["prefer-on-demand"] * 2


def _batch_pod(namespace: str) -> dict[str, Any]:
    amounts = {"cpu": "100m", "memory": "64Mi", SHARED: "1"}
    container = {"name": "batch", "image": "registry.example/batch:1", "resources": {"requests": amounts, "limits": amounts}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "batch", "namespace": namespace, "labels": {"role": "batch"}},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 0,
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}}


@pytest.mark.parametrize("with_priority", [True, False], ids=["priority-class", "no-priority-class"])
def test_serving_preempts_batch_work_only_with_the_priority_class(http: httpx.Client, cluster: Cluster,
                                                                   with_priority: bool) -> None:
    namespace = cluster.namespace("preempt" if with_priority else "no-preempt")
    node = cluster.node(f"{namespace}-node", slices=1, spot=False)
    response = http.post(f"/api/v1/namespaces/{namespace}/pods", json=_batch_pod(namespace))
    assert response.status_code == 201, response.text
    wait_for(lambda: pods(http, namespace, "role=batch")[0]["spec"].get("nodeName"), 60, "batch pod scheduled")
    cost = {"priorityClass": {}} if with_priority else {}
    objects = service(namespace, {**cost, "gpuSharing": {"mode": "timeSlicing", "replicas": 2}}, name=namespace)
    create(http, objects, {"ServiceAccount", "PriorityClass", "Deployment"})
    if with_priority:
        assert placed(http, namespace, 1) == [node]
        wait_for(lambda: not pods(http, namespace, "role=batch"), 60, "the batch pod pre-empted")
        assert pods(http, namespace)[0]["spec"]["priority"] == 1_000_000
    else:
        assert unschedulable(http, namespace)
        assert pods(http, namespace, "role=batch")[0]["metadata"].get("deletionTimestamp") is None


def test_the_disruption_floor_lets_a_drain_evict_one_pod_at_a_time(http: httpx.Client, cluster: Cluster) -> None:
    """A drain (after a spot reclaim notice, a scale-down, an upgrade) cordons the node and
    evicts through the Eviction API, which the budget governs: with 3 replicas and a floor of
    2, the first eviction goes through, and the second is refused while the first pod's
    replacement cannot be scheduled."""
    cluster.namespace("floor")
    node = cluster.node("floor-node", slices=3, spot=False)
    cost = {**COST, "spot": {"provider": "gke", "minAvailable": 2}}
    create(http, service("floor", cost, replicas=3), {"ServiceAccount", "PriorityClass", "Deployment", "PodDisruptionBudget"})
    placed(http, "floor", 3)
    budget = "/apis/policy/v1/namespaces/floor/poddisruptionbudgets/small"

    def allowed() -> bool:
        status = http.get(budget).json().get("status", {})
        return bool(status.get("currentHealthy") == 3 and status.get("disruptionsAllowed") == 1)

    wait_for(allowed, 60, "the budget counting 3 healthy pods, 1 disruption allowed")
    cordon = http.patch(f"/api/v1/nodes/{node}", json={"spec": {"unschedulable": True}},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert cordon.status_code == 200, cordon.text

    def evict(pod: str) -> httpx.Response:
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "floor"}}
        return http.post(f"/api/v1/namespaces/floor/pods/{pod}/eviction", json=eviction)

    first, second = (p["metadata"]["name"] for p in pods(http, "floor")[:2])
    assert evict(first).status_code == 201
    refused = evict(second)
    assert refused.status_code == 429 and "disruption budget" in refused.text, refused.text
