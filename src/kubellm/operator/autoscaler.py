"""The operator's own scaling (``spec.scaling.backend: operator``): kubellm's policy, the one
local mode uses (:mod:`kubellm.autoscale`), applied to the engine Deployments, with no KEDA,
HPA or Prometheus in the cluster.

Each tick, per scaled unit: list the unit's engine pods, read ``/metrics`` from the ready
ones (their pod IP and the ``http`` container port), sum or average the vLLM gauges into
:class:`~kubellm.autoscale.Signals`, ``decide``, and patch the Deployment's ``spec.replicas``
when the decision differs. The policy's state (its windows) lives in this process: a new
leader starts with empty windows, which delays a scale-down by at most one window.

With ``scaleToZero``, each tick also reads the gateway pods' ``/metrics`` where the gateway
runs (``spec.security.networkPolicy.gatewayNamespace``, else the service's namespace, as the
engines' NetworkPolicy has it): the model's ``kubellm_gateway_pending_requests`` (held while
no engine is ready, or queued) and ``kubellm_requests_in_flight``, summed over the gateway
pods, become the signals' ``held`` and ``in_flight``. So the unit goes to zero
``idleSeconds`` after the gateway's last request ends, and back to one at the first tick that
sees a held request. A tick that cannot read every ready gateway pod does not go to zero
(it cannot see the requests the silent pods hold, which would bring it back); what it read
still counts, so a held request seen on one pod brings the unit back.

Pure parts (:func:`engine_sample`, :func:`signals_of`, :func:`gateway_demand`,
:func:`with_gateway`, :func:`scale_targets`) are apart from the I/O
(:class:`OperatorAutoscaler`). A pod whose metrics cannot be read counts as not ready this
tick; nothing here raises past the tick but :class:`KubeApiError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kubellm.autoscale import Decision, ScalerState, ScalingPolicy, Signals, decide
# One engine's gauges: the parser local mode uses (vLLM and llama.cpp names, sums over label sets).
from kubellm.local.metrics import ReplicaMetrics as EngineSample
from kubellm.local.metrics import parse_metrics as engine_sample
from kubellm.operator.commands import POD_KIND
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.operator.kube import EventSink, Kube
from kubellm.render.context import RenderContext, parse_target
from kubellm.render.engine_pod import PORT_NAME
from kubellm.render.gateway import SELECTOR as GATEWAY_SELECTOR
from kubellm.render.images import DEFAULT_IMAGES
from kubellm.render.render import DEFAULT_TARGET
from kubellm.render.units import units
from kubellm.spec import LLMService

DEPLOYMENT_KIND = next(k for k in MANAGED_KINDS if k.kind == "Deployment")
log = logging.getLogger("kubellm.operator.autoscaler")

Key = tuple[str, str, str]
"""(namespace, LLMService, Deployment)."""
Scrape = Callable[[str], Awaitable[str | None]]
"""Read one pod's metrics text from a URL; None when it cannot be read."""


@dataclass(frozen=True)
class ScaleTarget:
    """A Deployment this operator scales, the pods that are its replicas, and the policy."""

    deployment: str
    selector: dict[str, str]
    policy: ScalingPolicy
    interval: float
    """Seconds between looks (the unit's ``pollingIntervalSeconds``)."""
    model: str = ""
    """The served model name the gateway labels its gauges with (read with scale to zero)."""
    gateway_namespace: str | None = None
    """Where the gateway runs (``security.networkPolicy.gatewayNamespace``); None: the service's."""


@dataclass(frozen=True)
class GatewayDemand:
    """The model's requests at the gateway, summed over its pods."""

    held: int
    """``kubellm_gateway_pending_requests``: held while no engine is ready, or queued."""
    in_flight: int
    """``kubellm_requests_in_flight``: requests the gateway is serving."""
    complete: bool = True
    """Every ready gateway pod answered; False: a silent pod's requests are unseen, not zero."""


GATEWAY_GAUGES = {"kubellm_gateway_pending_requests": "held", "kubellm_requests_in_flight": "in_flight"}


def gateway_demand(texts: Sequence[str], model: str, ready: int) -> GatewayDemand | None:
    """The *model*'s held and in-flight requests over the gateway pods' metrics *texts*, read
    from *ready* ready gateway pods (not ``complete`` when fewer answered); None when no pod
    answered."""
    if not texts:
        return None
    totals = {"held": 0.0, "in_flight": 0.0}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                field_name = GATEWAY_GAUGES.get(sample.name)
                if field_name is not None and sample.labels.get("model") == model:
                    totals[field_name] += float(sample.value)
    return GatewayDemand(held=round(totals["held"]), in_flight=round(totals["in_flight"]), complete=len(texts) >= ready)


def with_gateway(signals: Signals, policy: ScalingPolicy, demand: GatewayDemand | None) -> tuple[Signals, ScalingPolicy]:
    """*signals* with the gateway's held and in-flight requests that were seen, and *policy*,
    which never goes to zero on a look blind to any ready gateway pod (it could not see the
    requests that pod holds, which would bring the unit back)."""
    if demand is not None:
        signals = replace(signals, held=demand.held, in_flight=demand.in_flight)
    if demand is None or not demand.complete:
        policy = policy.model_copy(update={"scale_to_zero": False})
    return signals, policy


def signals_of(samples: Sequence[EngineSample], replicas: int) -> Signals:
    """Sums (waiting, running) and the mean KV use over the engines that answered."""
    ready = len(samples)
    kv = sum(s.kv_usage for s in samples) / ready if ready else None
    return Signals(
        replicas=replicas, ready=ready,
        waiting=sum(s.waiting for s in samples) if ready else None,
        running=sum(s.running for s in samples) if ready else None,
        kv_usage=kv,
    )


def scale_targets(service: LLMService) -> list[ScaleTarget]:
    """The units of *service* that ask for the operator's scaling (Deployments only: a
    LeaderWorkerSet or Argo Rollout is left alone)."""
    spec = service.spec
    if spec.serving.mode == "multinode" or spec.rollout.strategy == "argoCanary":
        return []
    ctx = RenderContext(service, parse_target(DEFAULT_TARGET), DEFAULT_IMAGES)
    return [
        ScaleTarget(unit.name, ctx.selector(unit.component), ScalingPolicy.from_spec(unit.scaling),
                    unit.scaling.polling_interval_seconds, spec.model.served_name,
                    spec.security.network_policy.gateway_namespace)
        for unit in units(ctx)
        if unit.scaling.enabled and unit.scaling.backend == "operator"
    ]


def metrics_url(pod: dict[str, Any]) -> str | None:
    """Where a ready pod serves /metrics: its IP and its container port named ``http``."""
    ip = pod.get("status", {}).get("podIP")
    ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", []) if p.get("name") == PORT_NAME]
    if not ip or not ports or not _ready(pod):
        return None
    return f"http://{ip}:{ports[0]['containerPort']}/metrics"


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


class HttpScraper:
    """GETs /metrics over one pooled client, kept alive to each pod between ticks (a client
    per pod per tick paid a TCP connect and a client's setup on every look). Made on first
    use, inside the operator's event loop; ``aclose`` at shutdown."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, url: str) -> str | None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        try:
            response = await self._client.get(url)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class OperatorAutoscaler:
    """Ticks the policy for every LLMService whose scaling backend is ``operator``."""

    kube: Kube
    scrape: Scrape = field(default_factory=HttpScraper)
    clock: Callable[[], float] = time.monotonic
    states: dict[Key, ScalerState] = field(default_factory=dict)
    last_tick: dict[Key, float] = field(default_factory=dict)

    def due(self, key: Key, target: ScaleTarget) -> bool:
        last = self.last_tick.get(key)
        return last is None or self.clock() - last >= target.interval

    async def tick(self, service: LLMService, namespace: str, events: EventSink) -> list[Decision]:
        """One look at each of *service*'s operator-scaled units that is due."""
        decisions = []
        for target in scale_targets(service):
            key = (namespace, service.metadata.name, target.deployment)
            if self.due(key, target):
                decision = await self._tick_target(key, target, events)
                if decision is not None:
                    decisions.append(decision)
        return decisions

    def forget(self, namespace: str, service_name: str) -> None:
        """Drop the windows of a deleted service's units."""
        for key in [k for k in self.last_tick if k[:2] == (namespace, service_name)]:
            self.states.pop(key, None)
            self.last_tick.pop(key, None)

    async def _tick_target(self, key: Key, target: ScaleTarget, events: EventSink) -> Decision | None:
        namespace = key[0]
        self.last_tick[key] = self.clock()
        deployment = await self.kube.get(DEPLOYMENT_KIND, target.deployment, namespace)
        if deployment is None:
            return None  # not applied yet (the cache phase comes first)
        replicas = int(deployment["spec"].get("replicas", 1))
        signals = signals_of(await self._samples(namespace, target.selector), replicas)
        policy = target.policy
        if policy.scale_to_zero:
            ready, texts = await self._look(target.gateway_namespace or namespace, GATEWAY_SELECTOR)
            signals, policy = with_gateway(signals, policy, gateway_demand(texts, target.model, ready))
        decision = decide(signals, policy, self.states.get(key, ScalerState()), self.clock())
        self.states[key] = decision.state
        if decision.replicas != replicas:
            await self.kube.merge_patch(DEPLOYMENT_KIND, target.deployment, {"spec": {"replicas": decision.replicas}}, namespace)
            log.info("%s/%s: %s", namespace, target.deployment, decision.reason)
            events("Normal", "Scaled", f"{target.deployment}: {decision.reason}")
        return decision

    async def _samples(self, namespace: str, selector: dict[str, str]) -> list[EngineSample]:
        _, texts = await self._look(namespace, selector)
        return [engine_sample(text) for text in texts]

    async def _look(self, namespace: str, selector: dict[str, str]) -> tuple[int, list[str]]:
        """How many pods matching *selector* in *namespace* are ready (with a metrics port),
        and the metrics texts of those that answered."""
        pods = await self.kube.list(POD_KIND, namespace, selector)
        urls = [url for url in map(metrics_url, pods) if url is not None]
        # at once: a pod that hangs costs one timeout, not one per pod behind it
        answers = await asyncio.gather(*(self.scrape(url) for url in urls))
        return len(urls), [text for text in answers if text is not None]
