"""The autoscaling policies compared, each configured as the field configures it.

Every policy is a small stateful object: ``interval`` (seconds between its decisions)
and ``desired(obs) -> replicas``. Parameters are pydantic models with their ranges, so a
bad one fails with its field path (``policies.kpa.panicThreshold``) and allowed range.

- ``hpa-gpu``: Kubernetes HPA on DCGM GPU utilisation, target 80 % (the common tutorial
  recipe); HPA's algorithm (ratio rule, 10 % tolerance, scale-up limit max(100 %, 4 pods)
  per 15 s, 300 s scale-down stabilization, 15 s sync).
- ``keda-queue``: KEDA Prometheus trigger on ``sum(vllm:num_requests_waiting)``, threshold 5,
  pollingInterval 15 s, minReplicaCount 1, as the vLLM production stack's KEDA tutorial
  (docs/source/use_cases/autoscaling-keda.rst); KEDA hands the value to an HPA
  (AverageValue), so HPA's rules apply.
- ``kubeai``: KubeAI's autoscaler: average in-flight requests per replica against
  ``targetRequests`` (default 100), every 10 s, averaged over a 10 min window,
  ``scaleDownDelaySeconds`` 30, minReplicas 0 (its proxy holds requests while scaling from zero).
- ``kpa``: AIBrix's KPA (Knative's algorithm): KV-cache use per pod, target 0.5, stable
  window 60 s, panic window 10 % of it, panic threshold 200 %, scale-down rate at most 2x.
- ``kubellm``: kubellm's own (:mod:`kubellm.autoscale`'s ``decide`` and its windows) on
  demand in arrivals per second: the gateway's arrival rate, extrapolated over the known
  cold-start time when it grows beyond Poisson noise, plus the backlog (waiting and held
  requests) to drain, over the rate one replica serves within the SLO (found by the plan);
  a 10 % tolerance and a scale-down window as long as a cold start keep it from flapping.
  With nothing held, waiting or running its demand is zero, so scale to zero's idle time
  runs from the last request's end (as the runtime's gauges read it), not from the rate's.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kubellm.autoscale import ScalerState, ScalingPolicy, Signals, decide
from kubellm.plan.observe import Observation


class Policy(Protocol):
    name: str
    interval: float

    def desired(self, obs: Observation) -> int: ...


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    min_replicas: Annotated[int, Field(ge=0, le=1000, alias="minReplicas")] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000, alias="maxReplicas")] = 20


class HpaParams(_Params):
    metric: str = "gpu"  # "gpu": utilisation percent per pod; "queue": KEDA's summed waiting
    target: Annotated[float, Field(gt=0, le=10_000)] = 80.0
    sync_seconds: Annotated[float, Field(ge=1, le=600, alias="syncSeconds")] = 15.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    scale_down_window: Annotated[float, Field(ge=0, le=3600, alias="scaleDownWindowSeconds")] = 300.0


class KubeAiParams(_Params):
    min_replicas: Annotated[int, Field(ge=0, le=1000, alias="minReplicas")] = 0
    target_requests: Annotated[float, Field(gt=0, le=10_000, alias="targetRequests")] = 100.0
    interval_seconds: Annotated[float, Field(ge=1, le=600, alias="intervalSeconds")] = 10.0
    window_seconds: Annotated[float, Field(ge=1, le=7200, alias="windowSeconds")] = 600.0
    scale_down_delay: Annotated[float, Field(ge=0, le=3600, alias="scaleDownDelaySeconds")] = 30.0


class KpaParams(_Params):
    target: Annotated[float, Field(gt=0, le=1)] = 0.5
    stable_window: Annotated[float, Field(ge=6, le=3600, alias="stableWindowSeconds")] = 60.0
    panic_window_pct: Annotated[float, Field(ge=1, le=100, alias="panicWindowPercentage")] = 10.0
    panic_threshold: Annotated[float, Field(ge=1.1, le=10, alias="panicThreshold")] = 2.0
    max_scale_down_rate: Annotated[float, Field(ge=1, le=100, alias="maxScaleDownRate")] = 2.0
    interval_seconds: Annotated[float, Field(ge=1, le=60, alias="intervalSeconds")] = 2.0


class KubellmParams(_Params):
    target_rate: Annotated[float, Field(gt=0, le=1000, alias="targetRate")] = 2.0
    """Arrivals per second one replica serves within the SLO (the plan finds it)."""
    headroom: Annotated[float, Field(ge=1, le=4)] = 1.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    drain_seconds: Annotated[float, Field(ge=1, le=3600, alias="drainSeconds")] = 120.0
    """A backlog (waiting and held requests) should be gone within this long."""
    cold_start_seconds: Annotated[float, Field(ge=0, le=3600, alias="coldStartSeconds")] = 180.0
    scale_down_window: Annotated[float, Field(ge=0, le=3600, alias="scaleDownWindowSeconds")] = 300.0
    scale_up_window: Annotated[float, Field(ge=0, le=600, alias="scaleUpWindowSeconds")] = 30.0
    scale_to_zero: bool = Field(False, alias="scaleToZero")
    idle_seconds: Annotated[float, Field(ge=0, le=86_400, alias="idleSeconds")] = 600.0
    interval_seconds: Annotated[float, Field(ge=1, le=600, alias="intervalSeconds")] = 5.0


def _clamp(n: int, p: _Params) -> int:
    return min(max(n, p.min_replicas), p.max_replicas)


class Hpa:
    """HPA's algorithm on one metric (GPU utilisation per pod, or KEDA's summed queue)."""

    def __init__(self, name: str, params: HpaParams) -> None:
        self.name, self.p, self.interval = name, params, params.sync_seconds
        self.history: deque[tuple[float, int]] = deque()

    def desired(self, obs: Observation) -> int:
        current = obs.replicas
        raw = self._raw(obs, current)
        self.history.append((obs.now, raw))
        while self.history[0][0] < obs.now - self.p.scale_down_window:
            self.history.popleft()
        if raw < current:
            raw = min(current, max(r for _, r in self.history))  # scale-down stabilization
        raw = min(raw, max(2 * current, current + 4))  # default scale-up policy per period
        return _clamp(raw, self.p)

    def _raw(self, obs: Observation, current: int) -> int:
        if obs.ready == 0:
            return max(current, 1 if obs.held else 0)
        if self.p.metric == "queue":
            ratio = obs.waiting / (self.p.target * obs.ready)
        else:
            ratio = obs.gpu_util / self.p.target
        if abs(ratio - 1.0) <= self.p.tolerance:
            return current
        return math.ceil(obs.ready * ratio)


class KubeAi:
    """KubeAI: moving average of in-flight requests over the window, / targetRequests."""

    def __init__(self, params: KubeAiParams) -> None:
        self.name, self.p, self.interval = "kubeai", params, params.interval_seconds
        self.samples: deque[float] = deque(maxlen=max(1, int(params.window_seconds / params.interval_seconds)))
        self.below_since: float | None = None

    def desired(self, obs: Observation) -> int:
        self.samples.append(obs.in_flight)
        want = math.ceil(sum(self.samples) / len(self.samples) / self.p.target_requests)
        if obs.replicas == 0 and obs.held:
            want = max(want, 1)  # the proxy scales from zero on the first request
        if want >= obs.replicas:
            self.below_since = None
            return _clamp(want, self.p)
        self.below_since = obs.now if self.below_since is None else self.below_since
        if obs.now - self.below_since < self.p.scale_down_delay:
            return obs.replicas
        return _clamp(want, self.p)


class Kpa:
    """AIBrix KPA / Knative: stable and panic windows over the summed per-pod metric."""

    def __init__(self, params: KpaParams) -> None:
        self.name, self.p, self.interval = "kpa", params, params.interval_seconds
        self.samples: deque[tuple[float, float]] = deque()
        self.panic_until = -math.inf

    def desired(self, obs: Observation) -> int:
        self.samples.append((obs.now, obs.kv_usage * obs.ready))
        while self.samples[0][0] < obs.now - self.p.stable_window:
            self.samples.popleft()
        panic_from = obs.now - self.p.stable_window * self.p.panic_window_pct / 100
        stable = _mean(v for _, v in self.samples)
        panic = _mean(v for t, v in self.samples if t >= panic_from)
        want_stable = math.ceil(stable / self.p.target)
        want_panic = math.ceil(panic / self.p.target)
        if obs.ready and want_panic / obs.ready >= self.p.panic_threshold:
            self.panic_until = obs.now + self.p.stable_window
        if obs.now < self.panic_until:
            want = max(want_panic, obs.replicas)  # never scale down while panicking
        else:
            want = max(want_stable, math.floor(obs.replicas / self.p.max_scale_down_rate))
        if obs.held:
            want = max(want, 1)
        return _clamp(want, self.p)


class Kubellm:
    """kubellm's policy: ``autoscale.decide`` on demand in arrivals per second.

    Demand is the arrival rate the gateway counts, extrapolated over the cold start when it
    grows (:func:`forecast_rate`), plus the backlog (waiting and held requests) spread over
    ``drainSeconds``; divided by the rate one replica serves within the SLO. Unlike queue
    or in-flight counts, the arrival rate does not balloon while replicas start, so the
    policy neither overshoots a burst nor drops every replica once the queue is gone.
    """

    def __init__(self, params: KubellmParams) -> None:
        self.name, self.p, self.interval = "kubellm", params, params.interval_seconds
        self.policy = ScalingPolicy(min_replicas=params.min_replicas, max_replicas=params.max_replicas,
                                    signal="runningRequests", target=params.target_rate,
                                    scale_to_zero=params.scale_to_zero, idle_seconds=params.idle_seconds,
                                    scale_up_seconds=params.scale_up_window,
                                    scale_down_seconds=params.scale_down_window)
        self.state = ScalerState()

    def desired(self, obs: Observation) -> int:
        backlog = (obs.waiting + obs.held) / self.p.drain_seconds
        demand = forecast_rate(obs, self.p.cold_start_seconds) * self.p.headroom + backlog
        if obs.replicas and 1.0 < demand / (obs.replicas * self.p.target_rate) <= 1.0 + self.p.tolerance:
            # within the tolerance above what runs: noise, not load; a replica started for it
            # would cost a cold start and then idle (HPA's tolerance, for the same reason)
            demand = obs.replicas * self.p.target_rate
        if self.p.scale_to_zero and not obs.in_flight:
            # nothing held, waiting or running: idle, as the runtime reads it (its running and
            # waiting gauges are zero). The 5-minute rate outlives the last request by up to
            # 5 minutes; counted as activity, it kept a replica (4 GPUs) up that long for nothing
            demand = 0.0
        # decide() divides a demand signal by its target: here requests/s by requests/s per replica
        signals = Signals(replicas=obs.replicas, ready=obs.ready, waiting=0.0, running=demand,
                          held=0, in_flight=int(obs.in_flight))
        decision = decide(signals, self.policy, self.state, obs.now)
        self.state = decision.state
        if obs.replicas == 0 and obs.held:
            return max(decision.replicas, 1)  # activation: a request is waiting on us
        return decision.replicas


MIN_EVENTS = 20
GROWTH_BAND = 1.2
Z_GROWTH = 4.0
MAX_GROWTH = 1.25  # a step (a burst) read as a slope would otherwise ask for many times the load


def growing(obs: Observation) -> bool:
    """Whether the short rate is above the long one by more than Poisson noise explains.

    30 s of arrivals at the long rate number ``e`` give or take ``sqrt(e)``; a short count
    ``Z_GROWTH`` of those above (and ``GROWTH_BAND`` x) is growth. At 6 requests/s a
    2.7-sigma excursion happens every few minutes: taken as a trend, each would start
    replicas that arrive after it is gone.
    """
    seen, expected = obs.rate_short * 30.0, obs.rate_long * 30.0
    if seen < MIN_EVENTS or seen < GROWTH_BAND * expected:
        return False
    return (seen - expected) > Z_GROWTH * math.sqrt(max(expected, 1.0))


def forecast_rate(obs: Observation, lead: float) -> float:
    """The arrival rate *lead* seconds from now, if it keeps its trend.

    The long (5 min) rate is the base: the short (30 s) one jitters by its square root.
    When the short rate is clearly above it (:func:`growing`), the slope between the two (centred 135 s apart) is extrapolated over the
    cold start, capped at ``MAX_GROWTH`` x the short rate. A falling rate is left to the
    scale-down window.
    """
    if not growing(obs):
        return max(obs.rate_long, obs.rate_short if obs.rate_short * 30.0 < MIN_EVENTS else 0.0)
    slope = (obs.rate_short - obs.rate_long) / 135.0
    return min(obs.rate_short + slope * lead, MAX_GROWTH * obs.rate_short)


def _mean(values: object) -> float:
    vals = list(values)  # type: ignore[call-overload]
    return sum(vals) / len(vals) if vals else 0.0
