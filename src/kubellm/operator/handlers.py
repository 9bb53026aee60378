"""kopf wiring: the handlers of LLMService, registered on a registry built per operator.

Create/update/resume apply at once; a timer re-checks every object (status as pods become
ready, objects someone deleted); the delete handler (kopf's finalizer) honours the cache's
reclaim policy before the garbage collector removes the rest through owner references.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from kubellm.operator.autoscaler import HttpScraper, OperatorAutoscaler
from kubellm.operator.errors import KubeApiError
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.operator.kube import EventSink, Kube
from kubellm.operator.ownership import RETAINED_ANNOTATION, selector
from kubellm.operator.documents import peer, spec_document
from kubellm.operator.reconcile import Reconciler
from kubellm.operator.settings import OperatorSettings
from kubellm.spec import SpecError, parse_spec
from kubellm.spec.schema import GROUP, PLURAL, VERSION

PVC_KIND = next(k for k in MANAGED_KINDS if k.kind == "PersistentVolumeClaim")
log = logging.getLogger("kubellm.operator")


def event_sink(body: kopf.Body) -> EventSink:
    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message[:1000])

    return emit


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from *old* to *new* status: keys that vanished are nulled."""
    patch: dict[str, Any] = {k: None for k in old if k not in new and k != "kopf"}
    patch.update(new)
    old_roles = old.get("roles") or {}
    if isinstance(new.get("roles"), dict):
        patch["roles"] = {**{r: None for r in old_roles if r not in new["roles"]}, **new["roles"]}
    return patch


def reclaim_policy(body: dict[str, Any]) -> str:
    """Retain keeps the cache claim when the service is deleted; Delete (default) removes it."""
    cache = (body.get("spec") or {}).get("cache") or {}
    storage_class = cache.get("storageClass") or {}
    return str(storage_class.get("reclaimPolicy") or "Delete")


async def finalize(kube: Kube, body: dict[str, Any], events: EventSink) -> None:
    """Before the LLMService goes: orphan the cache claims it retains, delete cluster-scoped
    objects (no owner reference can reach them); the garbage collector does the rest."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    if reclaim_policy(body) == "Retain":
        for claim in await kube.list(PVC_KIND, namespace, selector(name)):
            orphan = {"metadata": {"ownerReferences": None, "annotations": {RETAINED_ANNOTATION: "true"}}}
            await kube.merge_patch(PVC_KIND, claim["metadata"]["name"], orphan, namespace)
            events("Normal", "CacheRetained", f"kept PersistentVolumeClaim {claim['metadata']['name']} (reclaimPolicy Retain)")
    for kind in MANAGED_KINDS:
        if kind.namespaced or not await kube.served(kind):
            continue
        for obj in await kube.list(kind, None, selector(name)):
            await kube.delete(kind, obj["metadata"]["name"])


def in_cluster_login(info: kopf.ConnectionInfo | None, env: Mapping[str, str] = os.environ) -> kopf.ConnectionInfo | None:
    """kopf's service-account login names the API server https://kubernetes.default.svc, which
    only cluster DNS resolves; client-go and lightkube use the address the kubelet puts in the
    pod's environment, and so does the operator (a pod with no working DNS still reaches it)."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if info is None or not host or not port:
        return info
    host = f"[{host}]" if ":" in host else host
    return dataclasses.replace(info, server=f"https://{host}:{port}")


def build_registry(reconciler: Reconciler, settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if settings.context:  # kopf's kubeconfig login reads the current context only
            from kubellm.operator.kubeconfig import load, login_fields

            return kopf.ConnectionInfo(**login_fields(load(settings.kubeconfig, settings.context)))
        if settings.kubeconfig:
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs) or in_cluster_login(kopf.login_with_service_account(**kwargs))

    # Every LLMService by namespace, kept by kopf from its watch: the gateway config of a
    # namespace needs its peers, and listing them each pass would cost O(services²).
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="llmservices_by_namespace")
    def llmservices_by_namespace(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str | None, dict[str, Any]]:
        return {namespace: peer(dict(body))}

    def peers_of(namespace: str | None, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        index: kopf.Index[str | None, dict[str, Any]] = kwargs["llmservices_by_namespace"]  # injected by kopf
        return list(index.get(namespace, []))

    def everyone(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        index: kopf.Index[str | None, dict[str, Any]] = kwargs["llmservices_by_namespace"]
        return [p for namespace in index for p in index[namespace]]

    async def reconcile(body: kopf.Body, patch: kopf.Patch, namespace: str | None, **kwargs: Any) -> None:
        peers = peers_of(namespace, kwargs)
        outcome = await reconciler.reconcile(dict(body), event_sink(body), peers, everyone(kwargs))
        old = dict(body.get("status") or {})
        patch.status.update(status_patch(old, outcome.status))

    async def reconcile_change(body: kopf.Body, patch: kopf.Patch, namespace: str | None, **kwargs: Any) -> None:
        # kopf logs a handler when it ends; a first pass (every object applied, the
        # namespace's gateway too) can take seconds, so say when it starts
        log.info("reconciling %s/%s (generation %s)", namespace, body["metadata"]["name"], body["metadata"].get("generation"))
        await reconcile(body, patch, namespace, **kwargs)

    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="apply-on-resume")(reconcile_change)
    kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="apply-on-create")(reconcile_change)
    kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="apply-on-update")(reconcile_change)
    kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="resync", interval=settings.resync_seconds, initial_delay=settings.resync_seconds)(
        reconcile
    )

    # spec.scaling.backend operator: the policy ticks here, each unit looked at every
    # pollingIntervalSeconds. A daemon, not a timer: kopf logs every timer run at INFO, which
    # the posting level turns into an Event per run; a daemon's body follows the object.
    scraper = HttpScraper()
    autoscaler = OperatorAutoscaler(reconciler.kube, scrape=scraper)

    @kopf.on.cleanup(registry=registry)
    async def close_scraper(**_: Any) -> None:
        await scraper.aclose()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, id="autoscale", cancellation_timeout=5.0)
    async def autoscale(body: kopf.Body, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any) -> None:
        while not stopped:
            try:
                service = parse_spec(spec_document(dict(body)))
            except SpecError:
                service = None  # the reconciler reports a bad spec
            try:
                if service is not None:
                    await autoscaler.tick(service, namespace or reconciler.kube.namespace, event_sink(body))
            except KubeApiError as exc:  # the next tick tries again; kopf's retry would wait a minute
                log.warning("autoscaling %s/%s: %s", namespace, body["metadata"]["name"], exc)
            await stopped.wait(settings.autoscale_tick_seconds)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="finalize")
    async def on_delete(body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
        await finalize(reconciler.kube, dict(body), event_sink(body))
        autoscaler.forget(namespace or reconciler.kube.namespace, body["metadata"]["name"])
        if reconciler.gateway is not None and namespace:
            name = body["metadata"]["name"]
            reconciler.gateway.forget(namespace, name)
            others = [p for p in peers_of(namespace, kwargs) if p["metadata"]["name"] != name]
            await reconciler.gateway.publish(namespace, others)

    return registry


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    out = kopf.OperatorSettings()
    out.persistence.finalizer = settings.finalizer
    # Progress and the diff base live in annotations: our status is ours alone.
    out.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.kubellm.dev")
    out.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kopf.kubellm.dev")
    out.peering.standalone = True  # leader election is our Lease (see lease.py)
    out.posting.level = 20  # INFO and above become Kubernetes Events
    out.posting.reporting_component = "kubellm-operator"
    out.watching.server_timeout = 300
    # A service deleted while its resync timer is mid-pass keeps kopf's finalizer until kopf
    # sees the timer exit, and kopf looks again only every cancellation_polling seconds
    # (default 60): `kubellm delete` then waited a minute for one pass of about a second.
    out.background.cancellation_polling = 1.0
    return out
