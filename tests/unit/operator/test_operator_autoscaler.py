"""The operator's own scaling (scaling.backend operator, operator/autoscaler.py): metrics
parsed into the policy's signals, which units it scales, and one tick against an in-memory
stand-in for the Kubernetes API (the real API server and real engine pods: the real-node
test, tests/integration/realnode/test_realnode_autoscale.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.autoscale import ScalingPolicy, Signals
from kubellm.operator.autoscaler import (EngineSample, GatewayDemand, OperatorAutoscaler, engine_sample, gateway_demand,
                                         metrics_url, scale_targets, signals_of, with_gateway)
from kubellm.operator.kinds import ManagedKind
from kubellm.render import render
from kubellm.render.gateway import SELECTOR as GATEWAY_SELECTOR
from kubellm.spec import LLMService, parse_spec

METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 4.0
# HELP vllm:kv_cache_usage_perc KV-cache usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m"} 0.5
# HELP vllm:request_success Count of successfully processed requests.
# TYPE vllm:request_success counter
vllm:request_success_total{finished_reason="stop",model_name="m"} 9.0
"""


def service(network_policy: dict[str, Any] | None = None, **scaling: Any) -> LLMService:
    return parse_spec({
        "apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {"model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}, "scaling": scaling,
                 "security": {"networkPolicy": network_policy or {}}},
    })


def test_engine_sample_reads_the_vllm_gauges() -> None:
    assert engine_sample(METRICS) == EngineSample(waiting=4, running=3, kv_usage=0.5)
    assert engine_sample("") == EngineSample()


def test_signals_sum_demand_and_average_kv_use_over_the_engines_that_answered() -> None:
    signals = signals_of([EngineSample(1, 2, 0.2), EngineSample(3, 4, 0.6)], replicas=3)
    assert (signals.replicas, signals.ready, signals.waiting, signals.running) == (3, 2, 4, 6)
    assert signals.kv_usage == pytest.approx(0.4)
    nothing = signals_of([], replicas=2)
    assert (nothing.ready, nothing.waiting, nothing.running, nothing.kv_usage) == (0, None, None, None)


@pytest.mark.parametrize(("scaling", "scaled"), [
    ({"maxReplicas": 3, "backend": "operator"}, True),
    ({"maxReplicas": 3, "backend": "hpa"}, False),
    ({"maxReplicas": 3}, False),  # keda
    ({"backend": "operator"}, False),  # min == max: nothing to scale
])
def test_only_units_whose_backend_is_operator_are_scaled(scaling: dict[str, Any], scaled: bool) -> None:
    targets = scale_targets(service(**scaling))
    assert [t.deployment for t in targets] == (["chat"] if scaled else [])
    if scaled:
        assert targets[0].selector == {"app.kubernetes.io/instance": "chat", "app.kubernetes.io/component": "engine"}
        assert targets[0].policy.max_replicas == 3 and targets[0].interval == 15


def test_backend_operator_renders_no_autoscaler_and_leaves_replicas_to_the_operator() -> None:
    objects = render(service(maxReplicas=3, backend="operator"))
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"HorizontalPodAutoscaler", "ScaledObject"}
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]


def pod(name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "engine", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_metrics_url_only_for_ready_pods_with_the_http_port() -> None:
    assert metrics_url(pod("a", "10.0.0.5")) == "http://10.0.0.5:8000/metrics"
    assert metrics_url(pod("b", "10.0.0.6", ready=False)) is None
    assert metrics_url({**pod("c", ""), "status": {"conditions": []}}) is None


class Cluster:
    """What the autoscaler asks of the Kubernetes API, in memory."""

    namespace = "llm"

    def __init__(self, replicas: int, pods: list[dict[str, Any]]) -> None:
        self.replicas, self.pods = replicas, pods
        self.patches: list[dict[str, Any]] = []

    async def get(self, kind: ManagedKind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return {"spec": {"replicas": self.replicas}} if kind.kind == "Deployment" and name == "chat" else None

    async def list(self, kind: ManagedKind, namespace: str | None = None, labels: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.pods

    async def merge_patch(self, kind: ManagedKind, name: str, patch: dict[str, Any], namespace: str | None = None) -> None:
        self.patches.append(patch)
        self.replicas = patch["spec"]["replicas"]


async def test_a_tick_scales_the_deployment_as_the_policy_decides_and_waits_for_the_interval() -> None:
    now = [100.0]
    texts = {"http://10.0.0.5:8000/metrics": METRICS.replace("} 3.0", "} 6.0")}

    async def scrape(url: str) -> str | None:
        return texts.get(url)

    cluster = Cluster(1, [pod("chat-a", "10.0.0.5"), pod("chat-b", "10.0.0.7")])  # b does not answer
    events: list[tuple[str, str, str]] = []
    scaler = OperatorAutoscaler(cluster, scrape=scrape, clock=lambda: now[0])  # type: ignore[arg-type]
    chat = service(maxReplicas=3, backend="operator", signal="runningRequests", target=2, pollingIntervalSeconds=5)
    decisions = await scaler.tick(chat, "llm", lambda *e: events.append(e))
    assert [d.replicas for d in decisions] == [3] and cluster.patches == [{"spec": {"replicas": 3}}]
    assert events and events[0][1] == "Scaled" and "runningRequests=6" in events[0][2]
    now[0] += 1
    assert await scaler.tick(chat, "llm", lambda *e: None) == []  # not due before pollingIntervalSeconds
    scaler.forget("llm", "chat")
    assert scaler.states == {} and scaler.last_tick == {}


def gateway_text(pending: float, in_flight: float, model: str = "tiny-chat") -> str:
    return (
        "# HELP kubellm_gateway_pending_requests Requests waiting for a model's endpoint.\n"
        "# TYPE kubellm_gateway_pending_requests gauge\n"
        f'kubellm_gateway_pending_requests{{model="{model}"}} {pending}\n'
        'kubellm_gateway_pending_requests{model="other"} 7.0\n'
        "# HELP kubellm_requests_in_flight Requests being served.\n"
        "# TYPE kubellm_requests_in_flight gauge\n"
        f'kubellm_requests_in_flight{{model="{model}"}} {in_flight}\n'
        'kubellm_requests_in_flight{model="other"} 9.0\n'
    )


@pytest.mark.parametrize(("texts", "ready", "want"), [
    ([gateway_text(1, 0)], 1, GatewayDemand(held=1, in_flight=0)),
    ([gateway_text(1, 2), gateway_text(0, 3)], 2, GatewayDemand(held=1, in_flight=5)),  # summed over gateway pods
    ([gateway_text(0, 0), ""], 2, GatewayDemand(held=0, in_flight=0)),
    (["kubellm_requests_in_flight{model=\"other\"} 4\n"], 1, GatewayDemand(held=0, in_flight=0)),  # another model's
    ([gateway_text(0, 0)], 2, GatewayDemand(held=0, in_flight=0, complete=False)),  # 1 of 2 ready pods answered
    ([gateway_text(1, 0)], 3, GatewayDemand(held=1, in_flight=0, complete=False)),  # what was seen still counts
    ([], 1, None),  # no gateway pod answered: demand unknown
    ([], 0, None),  # no gateway pod ready
])
def test_gateway_demand_reads_the_models_held_and_in_flight_requests(texts: list[str], ready: int,
                                                                     want: GatewayDemand | None) -> None:
    assert gateway_demand(texts, "tiny-chat", ready) == want


ZERO_POLICY = ScalingPolicy(max_replicas=3, scale_to_zero=True)


@pytest.mark.parametrize(("demand", "held", "to_zero"), [
    (GatewayDemand(held=0, in_flight=0), 0, True),  # every ready gateway pod answered: zero allowed
    (GatewayDemand(held=2, in_flight=1), 2, True),
    (GatewayDemand(held=0, in_flight=0, complete=False), 0, False),  # a silent pod may hold a request
    (GatewayDemand(held=1, in_flight=0, complete=False), 1, False),  # a held request seen still activates
    (None, 0, False),  # none answered
])
def test_a_look_blind_to_any_ready_gateway_pod_never_goes_to_zero(demand: GatewayDemand | None, held: int,
                                                                  to_zero: bool) -> None:
    signals, policy = with_gateway(Signals(replicas=1, ready=1, waiting=0, running=0), ZERO_POLICY, demand)
    assert (signals.held, policy.scale_to_zero) == (held, to_zero)


@pytest.mark.parametrize(("network_policy", "want"), [
    ({}, None),  # the service's namespace
    ({"gatewayNamespace": "gateways"}, "gateways"),
])
def test_the_gateway_is_read_where_the_engines_network_policy_admits_it(network_policy: dict[str, Any],
                                                                        want: str | None) -> None:
    chat = service(network_policy, maxReplicas=3, backend="operator", scaleToZero=True)
    assert [t.gateway_namespace for t in scale_targets(chat)] == [want]


class ClusterWithGateway(Cluster):
    """The stand-in, with the namespace's gateway pods listed apart from the engines'."""

    def __init__(self, replicas: int, pods: list[dict[str, Any]], gateway: list[dict[str, Any]],
                 gateway_namespace: str = "llm") -> None:
        super().__init__(replicas, pods)
        self.gateway, self.gateway_namespace = gateway, gateway_namespace

    async def list(self, kind: ManagedKind, namespace: str | None = None, labels: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if labels == GATEWAY_SELECTOR:
            return self.gateway if namespace == self.gateway_namespace else []
        return self.pods if self.replicas else []


IDLE_ENGINE = METRICS.replace("} 3.0", "} 0.0").replace("} 4.0", "} 0.0")


async def test_scale_to_zero_follows_the_gateways_requests_down_and_back_up() -> None:
    now = [100.0]
    texts = {"http://10.0.0.5:8000/metrics": IDLE_ENGINE, "http://10.0.1.9:8000/metrics": gateway_text(0, 1)}

    async def scrape(url: str) -> str | None:
        return texts.get(url)

    cluster = ClusterWithGateway(1, [pod("chat-a", "10.0.0.5")], [pod("kubellm-gateway-a", "10.0.1.9")])
    scaler = OperatorAutoscaler(cluster, scrape=scrape, clock=lambda: now[0])  # type: ignore[arg-type]
    chat = service(maxReplicas=3, backend="operator", signal="runningRequests", target=2, pollingIntervalSeconds=5,
                   scaleToZero=True, idleSeconds=10)
    steps = [  # (gateway's held, in flight) -> replicas after the tick, 5 s apart
        ((0, 1), 1),  # a request streaming through the gateway: the engine reads idle, the service is not
        ((0, 0), 1),  # idle 5 s of 10
        ((0, 0), 0),  # idle 10 s: zero
        ((0, 0), 0),
        ((1, 1), 1),  # a request held at the gateway: back to one at once
    ]
    for (held, in_flight), want in steps:
        texts["http://10.0.1.9:8000/metrics"] = gateway_text(held, in_flight)
        await scaler.tick(chat, "llm", lambda *e: None)
        assert cluster.replicas == want, (now[0], held, in_flight)
        now[0] += 5
    assert cluster.patches == [{"spec": {"replicas": 0}}, {"spec": {"replicas": 1}}]


async def test_scale_to_zero_never_goes_to_zero_while_the_gateway_cannot_be_read() -> None:
    now = [100.0]

    async def scrape(url: str) -> str | None:
        return IDLE_ENGINE if url == "http://10.0.0.5:8000/metrics" else None  # the gateway does not answer

    cluster = ClusterWithGateway(1, [pod("chat-a", "10.0.0.5")], [pod("kubellm-gateway-a", "10.0.1.9")])
    scaler = OperatorAutoscaler(cluster, scrape=scrape, clock=lambda: now[0])  # type: ignore[arg-type]
    chat = service(maxReplicas=3, backend="operator", scaleToZero=True, idleSeconds=10, pollingIntervalSeconds=5)
    for _ in range(6):
        await scaler.tick(chat, "llm", lambda *e: None)
        now[0] += 5
    assert cluster.replicas == 1 and cluster.patches == []


async def scale_to_zero_ticks(cluster: ClusterWithGateway, scrape: Any, ticks: int,
                              network_policy: dict[str, Any] | None = None) -> None:
    now = [100.0]
    scaler = OperatorAutoscaler(cluster, scrape=scrape, clock=lambda: now[0])  # type: ignore[arg-type]
    chat = service(network_policy, maxReplicas=3, backend="operator", scaleToZero=True, idleSeconds=10,
                   pollingIntervalSeconds=5)
    for _ in range(ticks):
        await scaler.tick(chat, "llm", lambda *e: None)
        now[0] += 5


async def test_scale_to_zero_never_goes_to_zero_while_one_of_the_ready_gateway_pods_is_silent() -> None:
    texts = {"http://10.0.0.5:8000/metrics": IDLE_ENGINE, "http://10.0.1.9:8000/metrics": gateway_text(0, 0)}

    async def scrape(url: str) -> str | None:
        return texts.get(url)  # gateway b (10.0.1.10) does not answer: it may hold a request

    gateways = [pod("kubellm-gateway-a", "10.0.1.9"), pod("kubellm-gateway-b", "10.0.1.10")]
    cluster = ClusterWithGateway(1, [pod("chat-a", "10.0.0.5")], gateways)
    await scale_to_zero_ticks(cluster, scrape, 6)
    assert cluster.replicas == 1 and cluster.patches == []
    texts["http://10.0.1.10:8000/metrics"] = gateway_text(0, 0)  # both answer, idle: zero after idleSeconds
    await scale_to_zero_ticks(cluster, scrape, 3)
    assert cluster.patches == [{"spec": {"replicas": 0}}]


async def test_scale_to_zero_reads_the_gateway_in_its_own_namespace() -> None:
    texts = {"http://10.0.0.5:8000/metrics": IDLE_ENGINE, "http://10.0.1.9:8000/metrics": gateway_text(0, 0)}

    async def scrape(url: str) -> str | None:
        return texts.get(url)

    gateway = [pod("kubellm-gateway-a", "10.0.1.9")]
    elsewhere = ClusterWithGateway(1, [pod("chat-a", "10.0.0.5")], gateway, gateway_namespace="gateways")
    await scale_to_zero_ticks(elsewhere, scrape, 3)  # the spec names no gatewayNamespace: blind, stays up
    assert elsewhere.patches == []
    elsewhere = ClusterWithGateway(1, [pod("chat-a", "10.0.0.5")], gateway, gateway_namespace="gateways")
    await scale_to_zero_ticks(elsewhere, scrape, 3, {"gatewayNamespace": "gateways"})
    assert elsewhere.patches == [{"spec": {"replicas": 0}}]
