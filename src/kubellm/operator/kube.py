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

import httpx2
from lightkube import ApiError, AsyncClient, ConfigError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import CascadeType, PatchType

from kubellm.operator import kubeconfig as kubeconfig_module
from kubellm.operator.errors import ClusterUnreachableError, Endpoint, KubeconfigError, KubeApiError, Request, api_error
from kubellm.operator.kinds import ManagedKind, kind_of

T = TypeVar("T")

CRD_KIND = ManagedKind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False)
LEASE_KIND = ManagedKind("coordination.k8s.io", "v1", "Lease", "leases")
NODE_KIND = ManagedKind("", "v1", "Node", "nodes", namespaced=False)
EVENT_KIND = ManagedKind("", "v1", "Event", "events")
POD_LOG_KIND = ManagedKind("", "v1", "Pod", "pods/log")


def _map_error(exc: ApiError, request: Request, endpoint: Endpoint) -> KubeApiError:
    status = exc.status
    details_kind = str(getattr(status.details, "kind", "") or "")
    return api_error(int(status.code or 0), str(status.reason or ""), str(status.message or ""), details_kind, request, endpoint)


def _cause(exc: httpx2.HTTPError) -> str:
    """The innermost reason (e.g. "Connection refused"), not httpx's generic wrapper text."""
    inner: BaseException = exc
    for _ in range(8):  # bounded: a chain may loop
        nxt = inner.__cause__ or inner.__context__
        if nxt is None:
            break
        inner = nxt
    text = str(inner) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


# Library errors become the operator's tree here and nowhere else (see errors.py).
async def _mapped(action: Awaitable[T], request: Request, endpoint: Endpoint) -> T:
    try:
        return await action
    except ApiError as exc:
        raise _map_error(exc, request, endpoint) from exc
    except httpx2.HTTPStatusError as exc:  # an answer without a Status body: "404 page not found" for an API not served
        message = exc.response.text.strip()[:200]
        raise api_error(exc.response.status_code, exc.response.reason_phrase, message, "", request, endpoint) from exc
    except httpx2.HTTPError as exc:
        raise ClusterUnreachableError(endpoint.server, _cause(exc)) from exc
    except ConfigError as exc:  # credentials resolved lazily: an exec plugin or token file
        raise KubeconfigError(f"the credentials of context {endpoint.context} cannot be used: {exc}") from exc


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


class Kube:
    """Async access to the API for dict-shaped objects of the managed kinds."""

    def __init__(self, client: AsyncClient, served_ttl: float = 10.0, endpoint: Endpoint | None = None) -> None:
        self._client = client
        self.endpoint = endpoint or Endpoint(server="the API server", context="-", user="-")
        self._classes: dict[ManagedKind, Any] = {}
        self._served: dict[ManagedKind, tuple[float, bool]] = {}
        self._served_ttl = served_ttl

    @classmethod
    @asynccontextmanager
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> AsyncIterator[Kube]:
        """From a kubeconfig path, else $KUBECONFIG / in-cluster / ~/.kube/config; *context*
        else the current one. Raises KubeconfigError naming what was tried."""
        config = kubeconfig_module.load(kubeconfig, context)
        try:
            client = AsyncClient(config=config, field_manager="kubellm-operator")
        except ConfigError as exc:  # e.g. a certificate file named in the kubeconfig is missing
            raise KubeconfigError(f"context {config.context_name} of the kubeconfig cannot be used: {exc}") from exc
        except OSError as exc:
            raise KubeconfigError(f"context {config.context_name} of the kubeconfig cannot be used: {exc}") from exc
        try:
            yield cls(client, endpoint=kubeconfig_module.endpoint(config))
        finally:
            await client.close()

    def _request(self, verb: str, kind: ManagedKind, namespace: str | None) -> Request:
        """What a refusal names: the client's namespace when none was given, none across all ("*")."""
        where = (namespace or self.namespace) if kind.namespaced and namespace != "*" else None
        return Request(verb, kind.plural, kind.group, where)

    async def _call(self, action: Awaitable[T], verb: str, kind: ManagedKind, namespace: str | None) -> T:
        return await _mapped(action, self._request(verb, kind, namespace), self.endpoint)

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
        namespace = obj.get("metadata", {}).get("namespace") or self.namespace
        applied = await self._call(self._client.apply(res(obj), field_manager=field_manager, force=True), "patch", kind, namespace)
        return _as_dict(applied)

    async def get(self, kind: ManagedKind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            found = await self._call(self._client.get(self.resource(kind), name, namespace=namespace), "get", kind, namespace)
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

        return await self._call(collect(), "list", kind, namespace)

    async def delete(self, kind: ManagedKind, name: str, namespace: str | None = None, *, foreground: bool = False) -> bool:
        """Delete; False when it was already gone."""
        cascade = CascadeType.FOREGROUND if foreground else CascadeType.BACKGROUND
        try:
            await self._call(
                self._client.delete(self.resource(kind), name, namespace=namespace, cascade=cascade), "delete", kind, namespace
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def merge_patch(self, kind: ManagedKind, name: str, patch: dict[str, Any], namespace: str | None = None) -> None:
        await self._call(
            self._client.patch(self.resource(kind), name, patch, namespace=namespace, patch_type=PatchType.MERGE),
            "patch", kind, namespace,
        )

    async def create(self, kind: ManagedKind, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return _as_dict(await self._call(self._client.create(self.resource(kind)(obj)), "create", kind, namespace))

    async def replace(self, kind: ManagedKind, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return _as_dict(await self._call(self._client.replace(self.resource(kind)(obj)), "update", kind, namespace))

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

    async def logs(self, pod: str, namespace: str, container: str, tail_lines: int, *, previous: bool = False) -> tuple[str, ...]:
        """The last *tail_lines* lines of a container's log (of its last run while it waits
        to restart; with *previous*, of the run before the current one)."""
        async def collect() -> tuple[str, ...]:
            stream = self._client.log(pod, namespace=namespace, container=container, tail_lines=tail_lines)
            return tuple([line.rstrip("\n") async for line in stream])

        async def collect_previous() -> tuple[str, ...]:
            # lightkube's log() has no `previous`; its authenticated httpx client does the GET
            params = {"container": container, "tailLines": str(tail_lines), "previous": "true"}
            response = await self._client._client._client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params=params)
            response.raise_for_status()
            return tuple(response.text.splitlines())

        return await self._call(collect_previous() if previous else collect(), "get", POD_LOG_KIND, namespace)

    async def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server, e.g. (1, 34)."""
        # lightkube has no call for /version; its httpx client (already authenticated) does.
        http = self._client._client._client
        try:
            response = await http.get("/version")
            response.raise_for_status()
        except httpx2.HTTPStatusError as exc:
            request = Request("get", "version (the /version URL)", "", None)
            raise api_error(exc.response.status_code, "", f"cannot read the API server's version: {exc}", "", request,
                            self.endpoint) from exc
        except httpx2.HTTPError as exc:
            raise ClusterUnreachableError(self.endpoint.server, _cause(exc)) from exc
        info = response.json()
        minor = "".join(ch for ch in str(info.get("minor", "0")) if ch.isdigit())
        return int(info.get("major", "1")), int(minor or 0)


EventSink = Callable[[str, str, str], None]
"""(type Normal|Warning, reason, message): where the reconciler reports what it does."""
