"""Warnings for valid but risky specs."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.spec import parse_spec
from kubellm.spec.advice import advise


def paths(spec: dict[str, Any]) -> list[str]:
    service = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "x"}, "spec": spec})
    return [issue.path for issue in advise(service.spec)]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"model": {"uri": "hf://a/b"}}, []),
    ({"model": {"uri": "hf://a/b"}, "scaling": {"minReplicas": 1, "maxReplicas": 3}}, ["spec.cache.accessMode"]),
    ({"model": {"uri": "hf://a/b"}, "scaling": {"minReplicas": 2}, "cache": {"accessMode": "ReadWriteMany"}}, []),
    ({"model": {"uri": "hf://a/b"}, "exposure": {"ingress": {"host": "a.example.com"}}},
     ["spec.exposure.ingress.tls", "spec.security.apiKeys"]),
    ({"model": {"uri": "hf://a/b"}, "exposure": {"ingress": {"host": "a.example.com", "tls": {"secretName": "t"}}},
      "security": {"apiKeys": {"secretRef": {"name": "k"}}}}, []),
])
def test_advice(spec: dict[str, Any], expected: list[str]) -> None:
    assert paths(spec) == expected
