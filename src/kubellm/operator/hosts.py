"""One exposure host, one LLMService, across the cluster: the older service keeps a host,
a newer one claiming it is refused (its status names both). Pure, over live objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Body = dict[str, Any]


def hosts(body: Body) -> set[str]:
    exposure = (body.get("spec") or {}).get("exposure") or {}
    return {str(r["host"]) for r in (exposure.get("ingress"), exposure.get("httpRoute")) if r and r.get("host")}


def _label(body: Body) -> str:
    meta = body["metadata"]
    return f"{meta.get('namespace') or 'default'}/{meta['name']}"


def _age(body: Body) -> tuple[str, str]:
    # RFC 3339 UTC timestamps sort as text; the name breaks ties (and orders unsaved objects)
    return str(body["metadata"].get("creationTimestamp") or "9999"), _label(body)


def host_conflict(body: Body, others: Iterable[Body]) -> str | None:
    """Why *body* may not have its exposure hosts (None: it may)."""
    mine = hosts(body)
    for other in sorted(others, key=_age):
        if _label(other) == _label(body) or other["metadata"].get("deletionTimestamp") or _age(other) > _age(body):
            continue
        shared = sorted(mine & hosts(other))
        if shared:
            return (f"exposure host {shared[0]!r} is claimed by both LLMService {_label(other)} (older, keeps it) and "
                    f"{_label(body)}; give one of them another host")
    return None
