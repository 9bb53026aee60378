"""The only module that talks to the Kubernetes API (through lightkube's async client).

Objects go in and come out as plain dicts; every kind is addressed through the table in
``kinds.py`` as a lightkube generic resource, so fields the Python models do not know are
never dropped. lightkube and httpx errors become ``KubeApiError`` here and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import CascadeType, PatchType

from kubellm.operator.errors import ImmutableFieldError, KubeApiError
from kubellm.operator.kinds import ManagedKind, kind_of

T = TypeVar("T")

CRD_KIND = ManagedKind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False)
LEASE_KIND = ManagedKind("coordination.k8s.io", "v1", "Lease", "leases")
NODE_KIND = ManagedKind("", "v1", "Node", "nodes", namespaced=False)
EVENT_KIND = ManagedKind("", "v1", "Event", "events")


def _map_error(exc: ApiError) -> KubeApiError:
    status = exc.status
    code = int(status.code or 0)
    message = str(status.message or "")
    reason = str(status.reason or "")
    if code == 422 and "immutable" in message:
        return ImmutableFieldError(code, message, reason=reason)
    return KubeApiError(code, message, reason=reason)


async def _call(action: Awaitable[T]) -> T:
    try:
        return await action
    except ApiError as exc:
        raise _map_error(exc) from exc
    except httpx.HTTPError as exc:
        raise KubeApiError(0, f"cannot reach the API server: {exc}") from exc


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


class Kube:
    """Async access to the API for dict-shaped objects of the managed kinds."""

    def __init__(self, client: AsyncClient, served_ttl: float = 10.0) -> None:
        self._client = client
        self._classes: dict[ManagedKind, Any] = {}
        self._served: dict[ManagedKind, tuple[float, bool]] = {}
        self._served_ttl = served_ttl

    @classmethod
    @asynccontextmanager
    async def connect(cls, kubeconfig: str | None = None) -> AsyncIterator[Kube]:
        """From a kubeconfig path, else $KUBECONFIG / ~/.kube/config / in-cluster."""
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        client = AsyncClient(config=config, field_manager="kubellm-operator")
        try:
            yield cls(client)
        finally:
            await client.close()

    @property
    def namespace(self) -> str:
        """The client's default namespace (kubeconfig context or the pod's)."""
        return str(self._client.namespace)

    def resource(self, kind: ManagedKind) -> Any:
        if kind not in self._classes:
            make = create_namespaced_resource if kind.namespaced else create_global_resource
            self._classes[kind] = make(kind.group, kind.version, kind.kind, kind.plural)
        return self._classes[kind]

    async def apply(self, obj: dict[str, Any], field_manager: str, kind: ManagedKind | None = None) -> dict[str, Any]:
        """Server-side apply, taking ownership of conflicting fields (we are the controller)."""
        kind = kind or kind_of(obj)
        res = self.resource(kind)
        # lightkube takes the namespace from the object's metadata.
        applied = await _call(self._client.apply(res(obj), field_manager=field_manager, force=True))
        return _as_dict(applied)

    async def get(self, kind: ManagedKind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            found = await _call(self._client.get(self.resource(kind), name, namespace=namespace))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return _as_dict(found)

    async def list(self, kind: ManagedKind, namespace: str | None = None, labels: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Objects of *kind* in *namespace* ("*": all namespaces), optionally by labels."""
        async def collect() -> list[dict[str, Any]]:
            ns = namespace if kind.namespaced else None
            return [_as_dict(o) async for o in self._client.list(self.resource(kind), namespace=ns, labels=labels)]

        return await _call(collect())

    async def delete(self, kind: ManagedKind, name: str, namespace: str | None = None, *, foreground: bool = False) -> bool:
        """Delete; False when it was already gone."""
        cascade = CascadeType.FOREGROUND if foreground else CascadeType.BACKGROUND
        try:
            await _call(self._client.delete(self.resource(kind), name, namespace=namespace, cascade=cascade))
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def merge_patch(self, kind: ManagedKind, name: str, patch: dict[str, Any], namespace: str | None = None) -> None:
        await _call(
            self._client.patch(self.resource(kind), name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        )

    async def create(self, kind: ManagedKind, obj: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await _call(self._client.create(self.resource(kind)(obj))))

    async def replace(self, kind: ManagedKind, obj: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await _call(self._client.replace(self.resource(kind)(obj))))

    async def served(self, kind: ManagedKind) -> bool:
        """Whether the API serves *kind*: built-in kinds are; CRD kinds need an Established CRD."""
        if not kind.crd_hint:
            return True
        # Remembered briefly: every pass asks, and CRDs come and go rarely.
        now = time.monotonic()
        cached = self._served.get(kind)
        if cached is not None and now - cached[0] < self._served_ttl:
            return cached[1]
        served = await self._crd_served(kind)
        self._served[kind] = (now, served)
        return served

    async def _crd_served(self, kind: ManagedKind) -> bool:
        crd = await self.get(CRD_KIND, kind.crd_name)
        if crd is None:
            return False
        versions = {v["name"] for v in crd["spec"].get("versions", []) if v.get("served")}
        established = any(
            c.get("type") == "Established" and c.get("status") == "True" for c in (crd.get("status") or {}).get("conditions", [])
        )
        return kind.version in versions and established

    async def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server, e.g. (1, 34)."""
        # lightkube has no call for /version; its httpx client (already authenticated) does.
        http = self._client._client._client
        try:
            response = await http.get("/version")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise KubeApiError(0, f"cannot read the API server's version: {exc}") from exc
        info = response.json()
        minor = "".join(ch for ch in str(info.get("minor", "0")) if ch.isdigit())
        return int(info.get("major", "1")), int(minor or 0)


EventSink = Callable[[str, str, str], None]
"""(type Normal|Warning, reason, message): where the reconciler reports what it does."""
