"""What the cluster commands do (install, apply, status, delete), as async functions over a
``Kube``; ``cli.py`` only parses arguments and prints."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.operator.errors import (
    ApplyFailedError,
    ForbiddenError,
    KubeApiError,
    MissingApiError,
    NotFoundError,
    OperatorError,
    WaitTimeoutError,
    namespace_missing,
)
from kubellm.operator.install import manifests
from kubellm.render.images import Images
from kubellm.operator.kinds import MANAGED_KINDS, ManagedKind
from kubellm.operator.kube import CRD_KIND, EventSink, Kube
from kubellm.operator.podfailures import LOG_LINES, PodFailure, failures
from kubellm.operator.health import judge
from kubellm.operator.ownership import CLI_FIELD_MANAGER, RETAINED_ANNOTATION, identity, selector
from kubellm.operator.reconcile import Reconciler, Renderer
from kubellm.spec import LLMService
from kubellm.spec.schema import GROUP, PLURAL, VERSION

INSTALL_HINT = "install its CRD with `kubellm install` (or `kubellm install --crd-only`)"
LLMSERVICE_KIND = ManagedKind(GROUP, VERSION, "LLMService", PLURAL, crd_hint=INSTALL_HINT)
NAMESPACE_KIND = ManagedKind("", "v1", "Namespace", "namespaces", namespaced=False)
POD_KIND = ManagedKind("", "v1", "Pod", "pods")
_INSTALL_KINDS = {
    "CustomResourceDefinition": CRD_KIND,
    "Namespace": NAMESPACE_KIND,
    "ClusterRole": ManagedKind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    "ClusterRoleBinding": ManagedKind(
        "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False
    ),
}


def _install_kind(obj: dict[str, Any]) -> ManagedKind:
    if obj["kind"] in _INSTALL_KINDS:
        return _INSTALL_KINDS[obj["kind"]]
    return next(k for k in MANAGED_KINDS if k.kind == obj["kind"] and k.api_version == obj["apiVersion"])


async def install(kube: Kube, namespace: str, images: Images, replicas: int, operator_args: Sequence[str] = (), *,
                  operator: bool = True) -> list[str]:
    """Apply the CRD (and, with *operator*, the operator's RBAC and Deployment running
    *images*' kubellm with *operator_args*); wait until the CRD is served."""
    objects = manifests(namespace, images, replicas, operator_args)
    objects = objects if operator else objects[:1]
    done = []
    for obj in objects:
        await kube.apply(obj, CLI_FIELD_MANAGER, kind=_install_kind(obj))
        done.append(f"{obj['kind']}/{obj['metadata']['name']}")
    await wait_crd_established(kube, objects[0]["metadata"]["name"])
    return done


async def wait_crd_established(kube: Kube, name: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        crd = await kube.get(CRD_KIND, name)
        conditions = ((crd or {}).get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        await asyncio.sleep(0.2)
    raise WaitTimeoutError(
        f"timed out after {timeout:.0f}s waiting for CRD {name} to become Established; "
        f"see `kubectl describe crd {name}`"
    )


async def apply_resource(kube: Kube, service: LLMService, namespace: str) -> dict[str, Any]:
    """Server-side apply of the LLMService object itself (for the operator to reconcile)."""
    body = service.to_dict()
    body["metadata"]["namespace"] = namespace
    try:
        return await kube.apply(body, CLI_FIELD_MANAGER, kind=LLMSERVICE_KIND)
    except KubeApiError as exc:
        if exc.status == 404:
            raise await why_missing(kube, service.name, namespace) from exc
        raise


async def _readable(check: Any) -> bool | None:
    """The answer of a diagnostic read, or None when RBAC does not allow even that."""
    try:
        return bool(await check)
    except ForbiddenError:
        return None


async def why_missing(kube: Kube, name: str, namespace: str) -> OperatorError:
    """Why LLMService *name* was not found: no namespace (what the user typed comes first), no
    CRD, or no such object."""
    if await _readable(kube.get(NAMESPACE_KIND, namespace)) is False:
        return namespace_missing(namespace, f"namespaces {namespace!r} not found")
    if await _readable(kube.served(LLMSERVICE_KIND)) is False:
        return MissingApiError(LLMSERVICE_KIND.api_version, LLMSERVICE_KIND.kind, INSTALL_HINT)
    return NotFoundError(f"LLMService {name} not found in namespace {namespace}; list them with `kubectl get llmservices -n {namespace}`")


async def why_nothing_deleted(kube: Kube, name: str, namespace: str) -> OperatorError:
    """Like ``why_missing``; without the CRD, objects applied directly could still have existed."""
    why = await why_missing(kube, name, namespace)
    if isinstance(why, MissingApiError):
        return NotFoundError(f"nothing named {name} found in namespace {namespace} (and the LLMService CRD is not installed)")
    return why


@dataclass(frozen=True)
class DirectApply:
    applied: int
    pruned: list[str]
    status: dict[str, Any]


async def apply_direct(kube: Kube, service: LLMService, namespace: str, render: Renderer, events: EventSink) -> DirectApply:
    """Render and apply without the operator: both phases at once (nobody would come back to
    start the engines later), then prune what the previous apply left and this one did not."""
    reconciler = Reconciler(kube, render, field_manager=CLI_FIELD_MANAGER, owned=False)
    body = service.to_dict()
    body["metadata"]["namespace"] = namespace
    plan, notes = await reconciler.plan(body, service.name, namespace)
    problems: list[Any] = []
    await reconciler.apply_all(plan.objects, problems)
    if problems:  # usually one cause for all (RBAC, a missing namespace): the first says it
        more = f" ({len(problems) - 1} more object(s) not applied)" if len(problems) > 1 else ""
        raise ApplyFailedError(f"{problems[0].message}{more}")
    pruned = await reconciler.prune(service.name, namespace, {identity(o) for o in plan.objects}, events)
    observation = await reconciler.observe(plan, namespace, 1, (), tuple(notes))
    return DirectApply(len(plan.objects), pruned, judge(observation, [], reconciler.clock()))


async def get_service(kube: Kube, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return await kube.get(LLMSERVICE_KIND, name, namespace)
    except KubeApiError as exc:
        if exc.status == 404:  # the CRD itself is not installed
            return None
        raise


def _retained(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("annotations") or {}).get(RETAINED_ANNOTATION) == "true"


async def labelled_objects(kube: Kube, name: str, namespace: str, *, retained: bool = False) -> list[dict[str, Any]]:
    """Objects labelled for service *name*; caches kept by reclaimPolicy Retain only if asked."""
    found = []
    for kind in MANAGED_KINDS:
        if await kube.served(kind):
            for obj in await kube.list(kind, namespace if kind.namespaced else None, selector(name)):
                if retained or not _retained(obj):
                    found.append({**obj, "kind": kind.kind, "apiVersion": kind.api_version})
    return found


async def delete_service(kube: Kube, name: str, namespace: str, *, wait: bool, timeout: float = 60) -> list[str]:
    """Delete the LLMService (the operator's finalizer and the garbage collector remove its
    objects) and any object applied for it directly; with *wait*, until all are gone."""
    deleted = []
    if await get_service(kube, name, namespace) and await kube.delete(LLMSERVICE_KIND, name, namespace):
        deleted.append(f"LLMService/{name}")
    for obj in await labelled_objects(kube, name, namespace):
        kind = next(k for k in MANAGED_KINDS if k.kind == obj["kind"] and k.api_version == obj["apiVersion"])
        if not obj["metadata"].get("ownerReferences"):
            await kube.delete(kind, obj["metadata"]["name"], obj["metadata"].get("namespace"))
            deleted.append(f"{obj['kind']}/{obj['metadata']['name']}")
    if wait:
        await _wait_gone(kube, name, namespace, timeout)
    return deleted


async def _wait_gone(kube: Kube, name: str, namespace: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await get_service(kube, name, namespace) is None and not await labelled_objects(kube, name, namespace):
            return
        await asyncio.sleep(0.5)
    raise WaitTimeoutError(
        f"timed out after {timeout:.0f}s waiting for the objects of {namespace}/{name} to be deleted "
        "(is the operator running? its finalizer removes them); wait longer with --timeout"
    )


async def pod_failures(kube: Kube, namespace: str, labels: dict[str, Any]) -> list[PodFailure]:
    """The stuck or failed containers of the pods with *labels*, each with its log's last lines."""
    found = failures(await kube.list(POD_KIND, namespace, labels=labels))
    return [dataclasses.replace(f, logs=await _tail(kube, namespace, f)) for f in found]


async def _tail(kube: Kube, namespace: str, failure: PodFailure) -> tuple[str, ...]:
    try:
        lines = await kube.logs(failure.pod, namespace, failure.container, LOG_LINES)
        if not lines and failure.restarted:  # restarted, and the new run has written nothing yet
            lines = await kube.logs(failure.pod, namespace, failure.container, LOG_LINES, previous=True)
        return lines
    except KubeApiError:
        return ()  # an image never pulled has no log; the reason and message say why
