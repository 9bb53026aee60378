"""The parts of a live LLMService object that the operator reads: what the user wrote (for
the spec models) and what a peer contributes to its namespace's gateway config. Pure."""

from __future__ import annotations

from typing import Any

_USER_METADATA = ("name", "namespace", "labels")
_PEER_METADATA = (*_USER_METADATA, "uid", "generation", "deletionTimestamp", "creationTimestamp")


def _metadata(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    meta = body.get("metadata", {})
    return {k: meta[k] for k in keys if meta.get(k) is not None}


def spec_document(body: dict[str, Any]) -> dict[str, Any]:
    """The user's part of a live LLMService (what ``load_spec`` would read from a file)."""
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": _metadata(body, _USER_METADATA),
            "spec": body.get("spec")}


def peer(body: dict[str, Any]) -> dict[str, Any]:
    """What the gateway publisher keeps of a live LLMService (kopf's index holds these)."""
    status = body.get("status") or {}
    return {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": _metadata(body, _PEER_METADATA),
            "spec": dict(body.get("spec") or {}), "status": {"canary": status.get("canary")}}
