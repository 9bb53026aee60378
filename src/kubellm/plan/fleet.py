"""A fleet of replicas behind the gateway, scaled by a policy, in virtual time (no I/O).

One loop over the trace's arrivals; between two arrivals the clock visits three kinds of
tick in time order: the gateway's scrape (every second: replicas become ready, are brought
up to the present, and their metrics refresh the gateway's endpoints), the policy's
decision (its own interval), and a one-minute sample for the report. An arrival is routed
by the gateway's own scheduler (:class:`kubellm.gateway.scheduling.scheduler.Scheduler`
with the queue-depth, KV-cache and outstanding-requests scorers) over the ready
replicas, or held at the gateway while there is none (scale from zero) and sent when
one becomes ready. Every replica occupies one node; nodes are billed from provisioning to
removal, a freed node being kept ``node_idle_s`` for reuse.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.clock import FakeClock
from kubellm.gateway.config import PluginConfig, RoutingProfile
from kubellm.gateway.endpoint import Endpoint
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.scheduling.scheduler import Scheduler
from kubellm.plan.observe import Observation
from kubellm.plan.policies import Policy
from kubellm.plan.provision import Provisioning
from kubellm.plan.replica import Replica, Results
from kubellm.plan.tracefile import TraceRequest
from kubellm.sim.profiles import Profile

SCRAPE_S = 1.0  # the gateway's default scrape interval (gateway config scrape_interval_s)
SAMPLE_S = 60.0
DRAIN_LIMIT_S = 4 * 3600.0  # after the last arrival, stop waiting for stragglers after this

ROUTING = RoutingProfile(filters=(), scorers=(
    PluginConfig(type="queue-depth", weight=2.0), PluginConfig(type="kv-cache-usage", weight=1.0),
    PluginConfig(type="outstanding-requests", weight=2.0)))
_REQUEST = RoutingRequest(model="plan")  # no adapter, prefix or session: the scorers read load only


@dataclass(slots=True)
class Node:
    start: float
    free_since: float | None = None


@dataclass(slots=True)
class Pod:
    replica: Replica
    endpoint: Endpoint
    node: Node
    ready_at: float
    ready: bool = False
    draining: bool = False
    last_busy: float = 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    replicas: int
    ready: int
    held: int
    in_flight: float


@dataclass(slots=True)
class FleetRun:
    """What a run produced: per-request times, the one-minute samples, what it cost."""

    trace: Sequence[TraceRequest]
    results: Results
    samples: list[Sample] = field(default_factory=list)
    cold_starts: int = 0
    node_cold_starts: int = 0
    hold_times: list[float] = field(default_factory=list)
    node_seconds: float = 0.0
    gpus_per_replica: int = 1
    end: float = 0.0


class Fleet:
    """The state of one simulation run; :func:`simulate` drives it."""

    def __init__(self, trace: Sequence[TraceRequest], profile: Profile, policy: Policy,
                 provisioning: Provisioning, seed: int) -> None:
        self.trace, self.profile, self.policy, self.prov = trace, profile, policy, provisioning
        self.prompts = [r.prompt_tokens for r in trace]
        self.outputs = [r.output_tokens for r in trace]
        self.run = FleetRun(trace, Results(len(trace)), gpus_per_replica=profile.tensor_parallel)
        self.pods: list[Pod] = []
        self.free: list[Node] = []
        self.held: deque[tuple[int, float]] = deque()
        self.arrivals: deque[float] = deque()  # the last 5 min of arrival times
        self.recent: deque[float] = deque()  # the last 30 s of them
        self._routable_cache: list[Pod] | None = None
        self.scheduler = Scheduler(ROUTING, RoutingState(rng=random.Random(seed)))
        self.clock = FakeClock(0.0)
        self.by_url: dict[str, Pod] = {}
        self.serial = 0
        self.next = {"scrape": 0.0, "policy": 0.0, "sample": 0.0}
        self.last_policy = 0.0

    # the clock ---------------------------------------------------------------------------
    def run_until(self, t: float) -> None:
        """Handle every tick due at or before *t*, in time order."""
        while True:
            kind = min(self.next, key=self.next.__getitem__)
            due = self.next[kind]
            if due > t:
                return
            if kind == "scrape":
                self.scrape(due)
                self.next[kind] = due + SCRAPE_S
            elif kind == "policy":
                self.decide(due)
                self.next[kind] = due + self.policy.interval
            else:
                self.sample(due)
                self.next[kind] = due + SAMPLE_S

    # ticks -------------------------------------------------------------------------------
    def scrape(self, now: float) -> None:
        for pod in list(self.pods):
            if not pod.ready and pod.ready_at <= now:
                pod.ready = True
                self._routable_cache = None
                pod.replica.t = pod.ready_at
            if pod.ready:
                pod.replica.advance(now)
                self._refresh(pod)
            if pod.draining and (not pod.ready or pod.replica.in_flight == 0):
                self._delete(pod, now)
        self._release_idle_nodes(now)
        while self.held and self._routable():
            i, since = self.held.popleft()
            self.run.hold_times.append(now - since)
            self.route(i, now)

    def decide(self, now: float) -> None:
        obs = self.observe(now)
        want = self.policy.desired(obs)
        self.reconcile(want, now)

    def sample(self, now: float) -> None:
        live = [p for p in self.pods if not p.draining]
        self.run.samples.append(Sample(now, len(live), sum(p.ready for p in live), len(self.held),
                                       sum(p.replica.in_flight for p in self.pods if p.ready)))

    # observing and acting ----------------------------------------------------------------
    def observe(self, now: float) -> Observation:
        ready = [p for p in self.pods if p.ready and not p.draining]
        span = max(now - self.last_policy, 1e-9)
        utils = []
        for p in ready:
            utils.append(min(100.0, 100.0 * (p.replica.busy - p.last_busy) / span))
            p.last_busy = p.replica.busy
        self.last_policy = now
        for window, span_s in ((self.arrivals, 300.0), (self.recent, 30.0)):
            while window and window[0] < now - span_s:
                window.popleft()
        short = len(self.recent)
        n = len(ready)
        return Observation(
            now=now, replicas=sum(1 for p in self.pods if not p.draining), ready=n,
            waiting=float(sum(len(p.replica.waiting) for p in ready)),
            running=float(sum(p.replica.running for p in ready)),
            kv_usage=sum(p.replica.kv_usage for p in ready) / n if n else 0.0,
            gpu_util=sum(utils) / n if n else 0.0, held=len(self.held),
            rate_short=short / 30.0, rate_long=len(self.arrivals) / 300.0)

    def reconcile(self, want: int, now: float) -> None:
        live = [p for p in self.pods if not p.draining]
        for _ in range(want - len(live)):
            self._create(now)
        # a ReplicaSet deletes pods that are not ready first, then the least busy
        victims = sorted(live, key=lambda p: (p.ready, p.replica.in_flight))[:max(0, len(live) - want)]
        for pod in victims:
            pod.draining = True
        self._routable_cache = None

    def arrive(self, i: int, now: float) -> None:
        self.arrivals.append(now)
        self.recent.append(now)
        if self._routable():
            self.route(i, now)
        else:
            self.held.append((i, now))

    def route(self, i: int, now: float) -> None:
        self.clock.advance(now - self.clock.now())
        decision = self.scheduler.pick(_REQUEST, [p.endpoint for p in self._routable()])
        pod = self.by_url[decision.endpoint.url]
        pod.replica.add(i, now)
        pod.endpoint.outstanding += 1

    # pods and nodes ----------------------------------------------------------------------
    def _routable(self) -> list[Pod]:
        """Ready pods not draining; cached, since it changes only at ticks and arrivals are many."""
        if self._routable_cache is None:
            self._routable_cache = [p for p in self.pods if p.ready and not p.draining]
        return self._routable_cache

    def _create(self, now: float, warm: bool = False) -> None:
        new_node = not self.free
        node = Node(now) if new_node else self.free.pop()
        node.free_since = None
        ready_at = now if warm else now + self.prov.cold_start(self.profile.weight_bytes, new_node)
        self.serial += 1
        url = f"http://replica-{self.serial}"
        endpoint = Endpoint(url, "plan", CircuitBreaker(self.clock, failures=5, open_s=10.0))
        replica = Replica(self.profile, self.prompts, self.outputs, self.run.results, ready_at)
        pod = Pod(replica, endpoint, node, ready_at)
        self.pods.append(pod)
        self.by_url[url] = pod
        self.run.cold_starts += not warm
        self.run.node_cold_starts += new_node and not warm

    def _delete(self, pod: Pod, now: float) -> None:
        self._routable_cache = None
        self.pods.remove(pod)
        del self.by_url[pod.endpoint.url]
        pod.node.free_since = now
        self.free.append(pod.node)

    def _release_idle_nodes(self, now: float) -> None:
        for node in [n for n in self.free if n.free_since is not None and now - n.free_since >= self.prov.node_idle_s]:
            self.free.remove(node)
            self.run.node_seconds += (node.free_since or now) + self.prov.node_idle_s - node.start

    @staticmethod
    def _refresh(pod: Pod) -> None:
        r, e = pod.replica, pod.endpoint
        e.waiting, e.running, e.kv_usage, e.outstanding = float(len(r.waiting)), float(r.running), r.kv_usage, r.in_flight

    def finish(self, end: float) -> None:
        """Bill what is still up at *end*."""
        for pod in self.pods:
            self.run.node_seconds += end - pod.node.start
        for node in self.free:
            since = node.free_since if node.free_since is not None else end
            self.run.node_seconds += min(end, since + self.prov.node_idle_s) - node.start
        self.run.end = end


def simulate(trace: Sequence[TraceRequest], profile: Profile, policy: Policy, provisioning: Provisioning,
             initial_replicas: int = 1, seed: int = 0) -> FleetRun:
    """Serve *trace* with a fleet scaled by *policy*; nothing sleeps, nothing opens a socket."""
    fleet = Fleet(trace, profile, policy, provisioning, seed)
    for _ in range(initial_replicas):
        fleet._create(0.0, warm=True)  # already serving when the trace starts
    for i, req in enumerate(trace):
        fleet.run_until(req.at)
        fleet.arrive(i, req.at)
    t = trace[-1].at if trace else 0.0
    limit = t + DRAIN_LIMIT_S
    while t < limit and (fleet.held or any(p.replica.in_flight for p in fleet.pods)):
        t += SAMPLE_S
        fleet.run_until(t)
    fleet.finish(t)
    return fleet.run
