"""Warnings: specs that are valid but probably not what the user wants in production.

Unlike ``checks.py`` these never stop rendering; ``kubellm validate`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kubellm.spec.errors import SpecIssue

if TYPE_CHECKING:
    from kubellm.spec.service import LLMServiceSpec


def _shared_cache(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.cache.kind != "pvc" or spec.cache.access_mode != "ReadWriteOnce":
        return
    roles = [r for r in (spec.serving.prefill, spec.serving.decode) if r is not None]
    replicas = max([spec.scaling.effective_max, *(r.scaling.effective_max for r in roles)])
    if replicas > 1 or spec.serving.mode == "multinode":
        yield SpecIssue(
            "spec.cache.accessMode",
            "a ReadWriteOnce cache claim can only be mounted on one node, but pods may run on several",
            "use ReadWriteMany or ReadOnlyMany (with a storage class that supports it), or one replica",
        )


def _public_without_protection(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    ingress = spec.exposure.ingress
    if ingress is None:
        return
    if ingress.tls is None:
        yield SpecIssue("spec.exposure.ingress.tls", "the Ingress serves plain HTTP", "add tls.secretName (e.g. a cert-manager certificate)")
    if spec.security.api_keys is None:
        yield SpecIssue("spec.security.apiKeys", "the service is exposed through an Ingress without API keys",
                        "set security.apiKeys.secretRef and route the Ingress through the kubellm gateway")


def advise(spec: LLMServiceSpec) -> list[SpecIssue]:
    """Warnings for *spec* (empty when nothing looks off)."""
    return [*_shared_cache(spec), *_public_without_protection(spec)]
