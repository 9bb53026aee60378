"""One reconciliation of one LLMService: render, apply (cache phase, then engines), prune,
observe, judge. Idempotent and level-triggered, so a restart at any point converges: the
digest of what was completely applied is recorded in the status only after the apply and
the prune have both finished.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kubellm.operator.canary import decide
from kubellm.operator.documents import peer, spec_document
from kubellm.operator.errors import (
    ImmutableFieldError,
    KubeApiError,
    MissingApiError,
    RenderFailedError,
    UnmanagedKindError,
)
from kubellm.operator.gatewayconfig import GatewayConfigPublisher
from kubellm.operator.hosts import host_conflict
from kubellm.operator.health import Observation, Problem, RoleState, cache_state, judge, role_state
from kubellm.operator.kinds import MANAGED_KINDS, REPLICA_KINDS, ManagedKind, kind_of
from kubellm.operator.kube import EventSink, Kube
from kubellm.operator.ownership import FIELD_MANAGER, identity, selector, stamp
from kubellm.operator.plan import Plan, make_plan
from kubellm.render.errors import HostConflictError
from kubellm.spec import LLMService, SpecError, parse_spec


Renderer = Callable[[LLMService, str], list[dict[str, Any]]]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def roles_of(observation: Observation) -> dict[str, RoleState]:
    return {state.name: state for state in map(role_state, observation.workloads)}


def service_url(objects: Iterable[dict[str, Any]], namespace: str) -> str | None:
    """In-cluster URL of the first rendered Service that exposes a port."""
    for obj in objects:
        ports = (obj.get("spec") or {}).get("ports") or []
        if obj["kind"] == "Service" and ports and (obj.get("spec") or {}).get("clusterIP") != "None":
            return f"http://{obj['metadata']['name']}.{namespace}.svc:{ports[0]['port']}"
    return None


@dataclass
class Outcome:
    """What one pass did: the status to write and whether the desired state is fully applied."""

    status: dict[str, Any]
    applied: bool = False
    pruned: list[str] = field(default_factory=list)


@dataclass
class Reconciler:
    kube: Kube
    render: Renderer
    clock: Clock = utc_now
    field_manager: str = FIELD_MANAGER
    owned: bool = True
    """Set owner references (False for `kubellm apply`, which has no LLMService object)."""
    gateway: GatewayConfigPublisher | None = None
    """Keeps each namespace's gateway ConfigMap current (the operator's; not `kubellm apply`)."""

    async def reconcile(self, body: dict[str, Any], events: EventSink, peers: Iterable[dict[str, Any]] = (),
                        everyone: Iterable[dict[str, Any]] = ()) -> Outcome:
        """One pass over *body*; *peers* are the namespace's live LLMServices (for the
        gateway, when this reconciler keeps one), *everyone* the cluster's (exposure hosts)."""
        meta = body["metadata"]
        name, namespace = meta["name"], meta.get("namespace") or self.kube.namespace
        generation = int(meta.get("generation", 1))
        previous = body.get("status") or {}
        try:
            service = parse_spec(spec_document(body))
            _check_hosts(body, everyone)
            plan, notes = await self.plan(body, name, namespace, service)
        except (SpecError, HostConflictError, MissingApiError, UnmanagedKindError, RenderFailedError) as exc:
            return self._refused(exc, generation, previous, events)
        problems: list[Problem] = []
        fully = await self._converge(plan, previous, problems, events) and not problems
        cache_clean = not problems  # a gateway config problem below does not undo the cache phase
        observation = await self.observe(plan, namespace, generation, (), tuple(notes))
        canary = decide(service, previous.get("canary"), roles_of(observation), fully, self.clock())
        if canary.event is not None:
            events(canary.event.type, canary.event.reason, canary.event.message)
        pruned: list[str] = []
        if fully and not canary.retiring and (previous.get("appliedDigest") != plan.digest or canary.retired):
            pruned = await self.prune(name, namespace, {identity(o) for o in plan.objects}, events)
        if self.gateway is not None:
            problem = await self.gateway.publish(namespace, peers, peer(body), canary.route, events)
            problems += [problem] if problem is not None else []
        status = judge(replace(observation, problems=tuple(problems)), previous.get("conditions") or [], self.clock())
        gateway = self.gateway.status(namespace) if self.gateway is not None else None
        if gateway is not None:
            status["gateway"] = gateway
        if canary.state is not None:
            status["canary"] = canary.state
        warning = new_degradation(previous, status)
        if warning is not None:
            events("Warning", *warning)
        status["appliedDigest"] = plan.digest if fully else previous.get("appliedDigest")
        status["cacheAppliedDigest"] = plan.cache_digest if cache_clean else previous.get("cacheAppliedDigest")
        return Outcome(status, fully, pruned)

    # -- planning ---------------------------------------------------------------------------
    async def plan(self, body: dict[str, Any], name: str, namespace: str, service: LLMService | None = None
                   ) -> tuple[Plan, list[str]]:
        service = service or parse_spec(spec_document(body))
        major, minor = await self.kube.server_version()
        try:
            rendered = self.render(service, f"{major}.{minor}")
        except SpecError:
            raise
        except Exception as exc:  # the renderer's own errors; reported in the status, not swallowed
            raise RenderFailedError(f"rendering failed: {exc}") from exc
        owner = body if self.owned else None
        stamped = [stamp(obj, name, namespace, owner) for obj in rendered]
        kept, notes = await self._drop_unserved(stamped)
        return make_plan(kept), notes

    async def _drop_unserved(self, objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """Add-on objects (monitors, KEDA scalers) whose CRD is absent are skipped with a note:
        the engines still serve at their minimum replicas. An engine workload whose API is
        absent (LeaderWorkerSet, Argo Rollout) cannot be skipped."""
        served: dict[ManagedKind, bool] = {}
        kept, notes = [], []
        for obj in objects:
            kind = kind_of(obj)
            if kind not in served:
                served[kind] = await self.kube.served(kind)
            if served[kind]:
                kept.append(obj)
            elif kind.kind in REPLICA_KINDS:
                raise MissingApiError(kind.api_version, kind.kind, kind.crd_hint)
            else:
                notes.append(f"{kind.kind} {obj['metadata']['name']} skipped: {kind.api_version} not served ({kind.crd_hint})")
        return kept, notes

    def _refused(self, exc: Exception, generation: int, previous: dict[str, Any], events: EventSink) -> Outcome:
        status = judge(Observation(generation, problems=(Problem(_reason(exc), str(exc)),)), previous.get("conditions") or [], self.clock())
        warning = new_degradation(previous, status)
        if warning is not None:
            events("Warning", *warning)
        for kept in ("appliedDigest", "cacheAppliedDigest", "canary"):
            if previous.get(kept) is not None:
                status[kept] = previous[kept]
        return Outcome(status)

    # -- applying ---------------------------------------------------------------------------
    async def _converge(self, plan: Plan, previous: dict[str, Any], problems: list[Problem], events: EventSink) -> bool:
        """Apply the cache phase; the engine phase once the cache is ready. True when both were.
        A phase already applied at this digest is applied again only if an object of it is gone."""
        fresh = previous.get("appliedDigest") != plan.digest
        cache_fresh = fresh and previous.get("cacheAppliedDigest") != plan.cache_digest
        jobs = [] if cache_fresh else [await self._live(job) for job in plan.loader_jobs]
        others = [o for o in plan.cache_phase if o["kind"] != "Job"]
        if cache_fresh or None in jobs or await self._any_missing(others):
            await self.apply_all(plan.cache_phase, problems)
            jobs = [await self._live(job) for job in plan.loader_jobs]
        if problems or cache_state(tuple(j for j in jobs if j is not None)) != "ready" or None in jobs:
            return False
        if fresh or await self._any_missing(plan.engine_phase):
            await self.apply_all(plan.engine_phase, problems)
            if not problems and fresh:
                events("Normal", "Applied", f"applied {len(plan.objects)} objects (digest {plan.digest})")
        return not problems

    async def _any_missing(self, objects: Iterable[dict[str, Any]]) -> bool:
        for obj in objects:
            if kind_of(obj).kind in REPLICA_KINDS | {"Job", "Service", "PersistentVolumeClaim"}:
                if await self._live(obj) is None:
                    return True
        return False

    async def apply_all(self, objects: Iterable[dict[str, Any]], problems: list[Problem]) -> None:
        for obj in objects:
            try:
                await self._apply_one(obj)
            except KubeApiError as exc:
                kind, name = obj["kind"], obj["metadata"]["name"]
                problems.append(Problem("ApplyFailed", f"{kind} {name}: {exc}"))

    async def _apply_one(self, obj: dict[str, Any]) -> None:
        try:
            await self.kube.apply(obj, self.field_manager)
        except ImmutableFieldError:
            # e.g. a Job's pod template: the only way to change it is a new object.
            kind = kind_of(obj)
            await self.kube.delete(kind, obj["metadata"]["name"], obj["metadata"].get("namespace"), foreground=False)
            await self.kube.apply(obj, self.field_manager)

    async def _live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        kind = kind_of(obj)
        return await self.kube.get(kind, obj["metadata"]["name"], obj["metadata"].get("namespace") if kind.namespaced else None)

    # -- pruning ----------------------------------------------------------------------------
    async def prune(self, name: str, namespace: str, keep: set[tuple[str, str, str, str]], events: EventSink) -> list[str]:
        """Delete every object labelled for *name* that is not in *keep*."""
        deleted: list[str] = []
        for kind in MANAGED_KINDS:
            if not await self.kube.served(kind):
                continue
            for live in await self.kube.list(kind, namespace if kind.namespaced else None, selector(name)):
                live.setdefault("apiVersion", kind.api_version)
                live.setdefault("kind", kind.kind)
                if identity(live) not in keep and live["metadata"].get("deletionTimestamp") is None:
                    await self.kube.delete(kind, live["metadata"]["name"], live["metadata"].get("namespace"))
                    deleted.append(f"{kind.kind}/{live['metadata']['name']}")
        if deleted:
            events("Normal", "Pruned", f"deleted what is no longer rendered: {', '.join(deleted)}")
        return deleted

    # -- observing --------------------------------------------------------------------------
    async def observe(
        self, plan: Plan, namespace: str, generation: int, problems: tuple[Problem, ...], notes: tuple[str, ...]
    ) -> Observation:
        jobs = [job for job in [await self._live(o) for o in plan.loader_jobs] if job is not None]
        replica_objs = [o for o in plan.engine_phase if o["kind"] in REPLICA_KINDS]
        live = []
        for desired in replica_objs:
            found = await self._live(desired)
            if found is not None:
                live.append({**found, "kind": desired["kind"]})
        return Observation(
            generation=generation,
            loader_jobs=tuple(jobs),
            workloads=tuple(live),
            expected_workloads=len(replica_objs),
            problems=problems,
            service_url=service_url(plan.objects, namespace),
            notes=notes,
        )


def _check_hosts(body: dict[str, Any], everyone: Iterable[dict[str, Any]]) -> None:
    conflict = host_conflict(body, everyone)
    if conflict is not None:
        raise HostConflictError(conflict)


def _reason(exc: Exception) -> str:
    """The Degraded reason for an error that stopped planning."""
    if isinstance(exc, SpecError):
        return "InvalidSpec"
    if isinstance(exc, HostConflictError):
        return "ExposureHostTaken"
    if isinstance(exc, (MissingApiError, UnmanagedKindError)):
        return type(exc).__name__.removesuffix("Error")
    return "RenderFailed"


def _degraded(status: dict[str, Any]) -> dict[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Degraded" and condition.get("status") == "True":
            return dict(condition)
    return None


def new_degradation(previous: dict[str, Any], status: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a Degraded condition *status* has and *previous* had not for the
    same reason: one Warning event per new problem, not one per resync pass."""
    degraded = _degraded(status)
    if degraded is None or _was_degraded_for(previous, str(degraded.get("reason"))):
        return None
    return str(degraded.get("reason")), str(degraded.get("message", ""))


def _was_degraded_for(previous: dict[str, Any], reason: str) -> bool:
    degraded = _degraded(previous)
    return degraded is not None and degraded.get("reason") == reason
