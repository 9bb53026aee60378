"""The namespace gateway as the operator keeps it: which API-key Secrets are missing, the
objects with one owner reference per LLMService, what the status says about the gateway.
Pure: live objects in, plain dicts out (gatewayconfig.py does the I/O).

Every object carries one non-controller owner reference per LLMService of the namespace, so
the garbage collector removes the gateway with the last of them even if no finalizer runs,
and none carries ``kubellm.dev/service``, so pruning one service never touches it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from typing import Any

from kubellm.operator.ownership import owner_reference
from kubellm.render.gateway import NAME as GATEWAY_NAME

Body = dict[str, Any]


def keys_ref(body: Body) -> tuple[str, str] | None:
    """(Secret name, key) of a live LLMService's spec.security.apiKeys, if it has one."""
    api_keys = ((body.get("spec") or {}).get("security") or {}).get("apiKeys") or {}
    ref = api_keys.get("secretRef") or {}
    return (str(ref["name"]), str(ref.get("key") or "token")) if ref.get("name") else None


def secret_problem(namespace: str, ref: tuple[str, str], secret: Body | None) -> str | None:
    """Why *secret* cannot give the gateway its keys file (None: it can)."""
    name, key = ref
    if secret is None:
        return f"API-key Secret {name!r} (spec.security.apiKeys.secretRef) does not exist in namespace {namespace}"
    value = (secret.get("data") or {}).get(key)
    if value is None:
        return f"API-key Secret {name!r} in namespace {namespace} has no key {key!r} (spec.security.apiKeys.secretRef.key)"
    try:
        empty = not base64.b64decode(value).strip()
    except (binascii.Error, ValueError):
        empty = True
    return f"API-key Secret {name!r} key {key!r} in namespace {namespace} holds no keys" if empty else None


def owned(objects: Iterable[Body], owners: Sequence[Body]) -> list[Body]:
    refs = [{**owner_reference(o), "controller": False, "blockOwnerDeletion": False} for o in owners if o["metadata"].get("uid")]
    return [{**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}} for obj in objects]


def client_url(namespace: str, bodies: Sequence[Body], service_port: int) -> str:
    """The base URL clients use: the first exposure host routed to the gateway (https with
    TLS), else the gateway Service inside the cluster."""
    for body in sorted(bodies, key=lambda b: str(b["metadata"]["name"])):
        exposure = (body.get("spec") or {}).get("exposure") or {}
        for kind in ("httpRoute", "ingress"):
            route = exposure.get(kind) or {}
            if route.get("host") and route.get("backendService") == GATEWAY_NAME:
                return f"{'https' if route.get('tls') else 'http'}://{route['host']}/v1"
    return f"http://{GATEWAY_NAME}.{namespace}.svc:{service_port}/v1"


def gateway_status(deployment: Body | None, url: str) -> dict[str, Any]:
    """status.gateway of each LLMService: how many gateway pods are ready, and the URL."""
    if deployment is None:
        return {"ready": False, "readyReplicas": 0, "url": url}
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas", 0) or 0)
    return {"ready": ready > 0, "readyReplicas": ready, "replicas": int(status.get("replicas", 0) or 0), "url": url}
