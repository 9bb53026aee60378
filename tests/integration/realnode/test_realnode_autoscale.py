"""Autoscaling that scales real pods on the real node (issue 15 part 2): the simulator engine's
Deployment goes from 1 to 3 Ready pods under load, each of them serving, and back to 1 after it.

Three ways, one test shape (:func:`scale_cycle`), each on a LLMService applied for the operator:

- ``backend: hpa``: Prometheus (Debian's) scrapes the engine pods with the scrape job made from
  kubellm's rendered PodMonitor; the Prometheus Adapter (built from its Go module) serves
  ``custom.metrics.k8s.io`` from the rules ConfigMap the operator applied; the controller
  manager's HPA controller acts on the HPA the operator applied.
- ``backend: keda`` with ``scaleToZero``: KEDA's operator and metrics server (built from its Go
  module) reconcile the ScaledObject the operator applied, querying the same Prometheus; the
  namespace's gateway holds a request while KEDA scales the engines from zero.
- ``backend: operator``: no HPA, KEDA or Prometheus; the operator reads the engines' /metrics
  and runs kubellm's policy (the one local mode uses). With ``scaleToZero`` it also reads the
  gateway's held and in-flight gauges from the gateway pod's /metrics: to zero when the
  gateway is idle, and back while the gateway holds a request.

The operator runs as a process on the host with its ServiceAccount's credentials (its RBAC as
`kubellm install` grants it), not as a pod: the pods would run the kubellm image built before
the working tree's last change. Nothing here is faked.

The load: 6 clients on the host, each sending one chat completion after another through the
engines' ClusterIP, a new connection each, so kube-proxy spreads them over the replicas. The
signal is ``runningRequests`` with a target of 2 per replica: 6 in flight ask for 3. Each
step's time goes to the module's timeline (printed; docs/autoscale.md has the figures).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubellm.operator.autoscaler import metrics_url
from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.adapter import Adapter, rules_from_configmaps, run_adapter
from kubellm.operator.testing.controlplane import free_port
from kubellm.operator.testing.harness import OperatorProcess, kubellm
from kubellm.operator.testing.keda import run_keda
from kubellm.operator.testing.prometheus import PodDiscovery, monitored_namespaces, run_prometheus, scrape_config
from kubellm.operator.testing.realnode import RealNode
from tests.integration.realnode import kubellm_steps as steps
from tests.integration.realnode.kubellm_steps import NS, OPERATOR_NS

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

CLIENTS = 6
TARGET = 2  # running requests per replica: CLIENTS / TARGET = 3 replicas
MAX_TOKENS = 300
TIMELINES: dict[str, dict[str, float]] = {}
# The namespace's gateway (it holds requests while KEDA scales from zero): one small pod.
GATEWAY_FLAGS = ("--gateway-replicas=1", "--gateway-autoscale-on=none", "--gateway-cpu=250m", "--gateway-memory=512Mi")
GATEWAY = "kubellm-gateway"


def service_spec(tmp: Path, name: str, backend: str, **scaling: Any) -> Path:
    """The quickstart's simulator engine, nothing to download (sim://), a fifth of a CPU per
    pod, autoscaled 1..3 on running requests with short windows so the test stays short."""
    body: dict[str, Any] = {
        "apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"uri": "sim://tiny-chat"},
            "engine": {"kind": "sim", "sim": {"profile": "llama-3.1-8b-h100"}},
            "resources": {"cpu": "200m", "memory": "256Mi"},
            "observability": {"scrapeIntervalSeconds": 5},
            "scaling": {
                "minReplicas": 1, "maxReplicas": 3, "signal": "runningRequests", "target": TARGET, "backend": backend,
                "pollingIntervalSeconds": 5, "stabilization": {"scaleUpSeconds": 0, "scaleDownSeconds": 20}, **scaling,
            },
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture(scope="module", autouse=True)
def report_timelines(realnode_cluster: tuple[ControlPlane, RealNode]) -> Iterator[None]:
    yield
    node = realnode_cluster[1]
    (node.paths.state.parent / "autoscale-timelines.json").write_text(json.dumps(TIMELINES, indent=1))
    print("\nautoscaling timelines (s after the load started):", json.dumps(TIMELINES, indent=1))


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The CRD, RBAC and ServiceAccount from `kubellm install`; the operator itself on the host
    with the ServiceAccount's token, rendering engines from kubellm's image in the node's registry."""
    image = steps.push_images(node, ["kubellm"])["kubellm"]
    kubellm(plane, "install", f"--image={image}", "--replicas=0")
    steps.namespace(plane, NS)
    credentials = plane.service_account_kubeconfig(OPERATOR_NS, "kubellm-operator")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(
        plane, log, "autoscale-operator", f"--image={image}", *GATEWAY_FLAGS, kubeconfig=credentials, lease_namespace=OPERATOR_NS,
    ).start()
    yield process
    process.stop()


@contextmanager
def applied(plane: ControlPlane, spec: Path, available: bool = True) -> Iterator[str]:
    """The LLMService applied and (with *available*) Available, one engine Ready; deleted on exit."""
    name = yaml.safe_load(spec.read_text())["metadata"]["name"]
    kubellm(plane, "apply", str(spec), "--resource", "-n", NS)
    try:
        if available:
            steps.wait(plane, NS, lambda: steps.available(plane, name), 120, f"{name} Available")
        yield name
    finally:
        kubellm(plane, "delete", name, "-n", NS, "--timeout=120", timeout=180)


@dataclass
class Load:
    """CLIENTS threads sending chat completions, one connection per request."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    served: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def client(self) -> None:
        body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": MAX_TOKENS,
                "min_tokens": MAX_TOKENS}
        while not self.stop.is_set():
            try:
                response = httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=60)
                if response.status_code == 200:
                    self.served.append(time.monotonic())
                else:
                    self.failed.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                self.failed.append(repr(exc))

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(90)


def engines(plane: ControlPlane, name: str) -> list[dict[str, Any]]:
    return steps.pods(plane, NS, f"app.kubernetes.io/instance={name},app.kubernetes.io/component=engine")


def served_by(pod: dict[str, Any]) -> float:
    """vllm:request_success_total of one engine, read from its /metrics at its pod IP."""
    url = metrics_url(pod)
    assert url is not None, pod["metadata"]["name"]
    text = httpx.get(url, timeout=5).text
    families = [f for f in text_string_to_metric_families(text) if f.name == "vllm:request_success"]
    return sum(s.value for f in families for s in f.samples if s.name.endswith("_total"))


def replicas(plane: ControlPlane, name: str) -> int:
    return int(steps.get(plane, f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")["spec"].get("replicas", 1))


def scale_cycle(plane: ControlPlane, name: str, timeline: dict[str, float], marks: dict[str, Callable[[], bool]],
                floor: int = 1) -> Load:
    """Load until 3 engines are Ready and each has served, then none until the Deployment is
    back to *floor* pods. *marks* are extra moments to time while the load runs (first true)."""
    load = Load(steps.service_url(plane, name))
    began = time.monotonic()

    def note(mark: str) -> None:
        timeline.setdefault(mark, round(time.monotonic() - began, 1))

    def up() -> bool:
        for mark, check in marks.items():
            if mark not in timeline and check():
                note(mark)
        if replicas(plane, name) >= 3:
            note("scale decision (Deployment replicas 3)")
        ready = [p for p in engines(plane, name) if steps.ready(p)]
        return len(ready) == 3

    with load.running():
        steps.wait(plane, NS, up, 180, f"{name}: 3 engines Ready under load")
        note("3 engine pods Ready")
        first = {p["metadata"]["name"]: served_by(p) for p in engines(plane, name) if steps.ready(p)}

        def each_served() -> bool:
            now = {p["metadata"]["name"]: served_by(p) for p in engines(plane, name) if steps.ready(p)}
            return len(now) == 3 and all(now.get(pod, 0) > count for pod, count in first.items())

        steps.wait(plane, NS, each_served, 60, f"{name}: each of the 3 engines serving")
        note("traffic on each of the 3 pods")
        assert replicas(plane, name) == 3  # held under load: no flapping
        load_stopped = time.monotonic()
    timeline["load stopped"] = round(load_stopped - began, 1)

    def down() -> bool:
        return replicas(plane, name) == floor and len(engines(plane, name)) == floor

    steps.wait(plane, NS, down, 120, f"{name}: back to {floor} engines")
    note(f"back to {floor} pod (Deployment replicas {floor}, other pods gone)")
    timeline["scale-down after the load stopped"] = round(time.monotonic() - load_stopped, 1)
    timeline["requests served"] = len(load.served)
    return load


def quantity(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def adapter_metric(plane: ControlPlane, metric: str) -> float:
    """The sum over the engines of *metric* as the API server serves it (through the adapter)."""
    with plane.http() as client:
        response = client.get(Adapter.metric_path(NS, metric))
    if response.status_code != 200:
        return 0.0
    return sum(quantity(item["value"]) for item in response.json().get("items", []))


def hpa_desired(plane: ControlPlane, name: str) -> int:
    status = steps.get(plane, f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{name}").get("status", {})
    return int(status.get("desiredReplicas", 0))


def test_hpa_on_prometheus_adapter_metrics_scales_the_engines_1_3_1(
    plane: ControlPlane, node: RealNode, operator: OperatorProcess, tmp_path: Path,
) -> None:
    spec = service_spec(tmp_path, "hpa-scaled", "hpa")
    rendered = {o["kind"]: o for o in yaml.safe_load_all(kubellm(plane, "render", str(spec)).stdout) if o}
    monitor, hpa = rendered["PodMonitor"], rendered["HorizontalPodAutoscaler"]
    targets = tmp_path / "targets.yaml"
    discovery = PodDiscovery(lambda ns: steps.get(plane, f"/api/v1/namespaces/{ns}/pods")["items"], monitored_namespaces(monitor), targets)
    with discovery, run_prometheus(tmp_path / "prometheus", scrape_config(monitor, targets), free_port()) as prometheus, \
            applied(plane, spec) as name:
        # The rules as the operator applied them, merged into the adapter's config as a user would.
        rules = rules_from_configmaps([steps.get(plane, f"/api/v1/namespaces/{NS}/configmaps/{name}-prometheus-adapter-rules")])
        with run_adapter(plane, tmp_path / "adapter", rules, address=node.network.host_ip, port=free_port(node.network.host_ip),
                         prometheus_url=prometheus.url):
            applied_hpa = steps.get(plane, f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{name}")
            assert applied_hpa["spec"]["metrics"] == hpa["spec"]["metrics"]  # the operator applied what kubellm renders
            metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
            # Scraped with the rendered labels: the series kubellm's KEDA query, alerts and adapter rules select on.
            query = f'vllm:num_requests_running{{app_kubernetes_io_instance="{name}",app_kubernetes_io_component="engine",namespace="{NS}"}}'
            series = steps.wait(plane, NS, lambda: prometheus.query(query), 30, f"Prometheus scraping {name}'s engine")
            assert series[0]["metric"]["pod"].startswith(f"{name}-")
            timeline = TIMELINES.setdefault("hpa", {})
            marks = {
                "metric visible through custom.metrics.k8s.io": lambda: adapter_metric(plane, metric) > 0,
                "HPA decision (desiredReplicas 3)": lambda: hpa_desired(plane, name) >= 3,
            }
            load = scale_cycle(plane, name, timeline, marks)
    assert load.failed == [], f"{len(load.failed)} of {len(load.served) + len(load.failed)} requests failed: {load.failed[:5]}"


def test_the_operators_own_policy_scales_the_engines_1_3_1(plane: ControlPlane, operator: OperatorProcess, tmp_path: Path) -> None:
    spec = service_spec(tmp_path, "self-scaled", "operator")
    rendered = [o for o in yaml.safe_load_all(kubellm(plane, "render", str(spec)).stdout) if o]
    assert not {o["kind"] for o in rendered} & {"HorizontalPodAutoscaler", "ScaledObject"}
    with applied(plane, spec) as name:
        timeline = TIMELINES.setdefault("operator", {})
        load = scale_cycle(plane, name, timeline, {})
        scaled = [e for e in steps.get(plane, f"/api/v1/namespaces/{NS}/events")["items"] if e["reason"] == "Scaled"]
        reasons = [e.get("message", "") for e in scaled]
    assert any(r.startswith(f"{name}: scale up 1->") for r in reasons), reasons
    assert any(r.startswith(f"{name}: scale down ") and "->1:" in r for r in reasons), reasons
    assert load.failed == [], f"{len(load.failed)} of {len(load.served) + len(load.failed)} requests failed: {load.failed[:5]}"


def chat_through_gateway(plane: ControlPlane) -> tuple[int, float]:
    """One chat completion through the namespace's gateway: (status, seconds it took)."""
    began = time.monotonic()
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
    response = httpx.post(f"{steps.service_url(plane, GATEWAY)}/v1/chat/completions", json=body, timeout=150)
    return response.status_code, round(time.monotonic() - began, 1)


def gateway_ready(plane: ControlPlane) -> bool:
    """The namespace's gateway (the operator makes it with the namespace's first service) is Ready."""
    with plane.http() as client:
        if client.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{GATEWAY}").status_code == 404:
            return False
    return steps.rolled_out(plane, NS, GATEWAY)


def held_from_zero(plane: ControlPlane, name: str, timeline: dict[str, float], label: str) -> None:
    """Wait for the autoscaler to take the engines to zero, then one request through the gateway, which
    holds it until an engine is Ready: it must succeed; its latency is the hold time."""
    steps.wait(plane, NS, lambda: replicas(plane, name) == 0 and not engines(plane, name), 120, f"{name} scaled to zero")
    status, seconds = chat_through_gateway(plane)
    assert status == 200, status
    assert replicas(plane, name) >= 1
    timeline[f"{label}: request held by the gateway, answered after"] = seconds


def test_keda_scales_the_engines_1_3_to_zero_and_back_with_the_gateway_holding(
    plane: ControlPlane, node: RealNode, operator: OperatorProcess, tmp_path: Path,
) -> None:
    prometheus_port = free_port()
    spec = service_spec(tmp_path, "keda-scaled", "keda", scaleToZero=True, idleSeconds=20,
                        prometheusUrl=f"http://127.0.0.1:{prometheus_port}")
    rendered = [o for o in yaml.safe_load_all(kubellm(plane, "render", str(spec), "--gateway").stdout) if o]
    monitors = [o for o in rendered if o["kind"] == "PodMonitor"]  # the engines' and the gateway's
    scaled_object = next(o for o in rendered if o["kind"] == "ScaledObject")
    assert {t["name"] for t in scaled_object["spec"]["triggers"]} == {"runningrequests", "gateway-pending"}
    targets = tmp_path / "targets.yaml"
    discovery = PodDiscovery(lambda ns: steps.get(plane, f"/api/v1/namespaces/{ns}/pods")["items"], [NS], targets)
    jobs = [job for monitor in monitors for job in scrape_config(monitor, targets)]
    timeline = TIMELINES.setdefault("keda", {})
    with discovery, run_prometheus(tmp_path / "prometheus", jobs, prometheus_port), \
            run_keda(plane, tmp_path / "keda", address=node.network.host_ip), applied(plane, spec, available=False) as name:
        steps.wait(plane, NS, lambda: gateway_ready(plane), 120, "the gateway Ready")
        held_from_zero(plane, name, timeline, "first scale from zero")
        load = scale_cycle(plane, name, timeline, {"HPA decision (desiredReplicas 3)": lambda: hpa_desired(plane, name) >= 3},
                           floor=0)
        held_from_zero(plane, name, timeline, "after scaling to zero")
    assert load.failed == [], f"{len(load.failed)} of {len(load.served) + len(load.failed)} requests failed: {load.failed[:5]}"


def test_the_operators_own_policy_scales_the_engines_to_zero_and_back_with_the_gateway_holding(
    plane: ControlPlane, operator: OperatorProcess, tmp_path: Path,
) -> None:
    spec = service_spec(tmp_path, "self-zero", "operator", scaleToZero=True, idleSeconds=10)
    timeline = TIMELINES.setdefault("operator-zero", {})
    with applied(plane, spec, available=False) as name:
        steps.wait(plane, NS, lambda: gateway_ready(plane), 120, "the gateway Ready")
        held_from_zero(plane, name, timeline, "first scale from zero")
        held_from_zero(plane, name, timeline, "after scaling to zero")
        scaled = [e for e in steps.get(plane, f"/api/v1/namespaces/{NS}/events")["items"] if e["reason"] == "Scaled"]
        reasons = [e.get("message", "") for e in scaled if e.get("message", "").startswith(f"{name}: ")]
    assert any("1->0:" in r for r in reasons), reasons
    assert any("0->1:" in r and "held 1" in r for r in reasons), reasons  # back up on the request the gateway held
