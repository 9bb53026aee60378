"""Test helpers over a running API server's HTTP client: install CRDs, dry-run objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from kubellm.operator.testing.harness import wait_for

CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crd(http: httpx.Client, crd: dict[str, Any], timeout: float = 30.0) -> None:
    """Create *crd* (already there is fine) and wait until the API server serves it."""
    response = http.post(CRDS_PATH, json=crd)
    assert response.status_code in (201, 409), response.text
    name = crd["metadata"]["name"]

    def established() -> bool:
        conditions = http.get(f"{CRDS_PATH}/{name}").json().get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, timeout, f"CRD {name} established")


def dry_run(http: httpx.Client, obj: dict[str, Any], plurals: Mapping[str, str]) -> httpx.Response:
    """A server-side dry run of creating *obj* with strict field validation (unknown fields
    refused); *plurals* names the resources whose plural is not the kind + "s"."""
    api = obj["apiVersion"]
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    plural = plurals.get(obj["kind"], obj["kind"].lower() + "s")
    namespace = obj["metadata"].get("namespace")
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return http.post(path, params={"dryRun": "All", "fieldValidation": "Strict"}, json=obj)
