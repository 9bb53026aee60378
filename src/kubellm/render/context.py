"""What every render module reads: the spec, the target version, names and labels."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from kubellm.spec import LLMService
from kubellm.spec.checks import parse_version
from kubellm.render.errors import TargetVersionError
from kubellm.render.images import DEFAULT_IMAGES, Images

MIN_TARGET = (1, 29)
Obj = dict[str, Any]


def parse_target(version: str) -> tuple[int, int]:
    try:
        parsed = parse_version(version)
    except ValueError as exc:
        raise TargetVersionError(str(exc)) from exc
    if parsed < MIN_TARGET or parsed[0] != 1:
        raise TargetVersionError(
            f"target version {version} is not supported; use 1.{MIN_TARGET[1]} or later"
        )
    return parsed


def label_value(text: str) -> str:
    """*text* as a valid label value: other characters become '-', at most 63 long."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def short_hash(*parts: str) -> str:
    """A stable 10-character digest, used where a name must change when its input does."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class RenderContext:
    service: LLMService
    target: tuple[int, int]
    images: Images = DEFAULT_IMAGES

    @property
    def name(self) -> str:
        return self.service.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.service.metadata.namespace

    def labels(self, component: str) -> dict[str, str]:
        """Labels of every object of *component* (user labels first, ours win)."""
        return {
            **self.service.metadata.labels,
            **self.selector(component),
            "app.kubernetes.io/name": "llmservice",
            "app.kubernetes.io/managed-by": "kubellm",
            "app.kubernetes.io/part-of": "kubellm",
            "kubellm.dev/service": self.name,
        }

    def selector(self, component: str) -> dict[str, str]:
        """Immutable selector labels of *component*."""
        return {"app.kubernetes.io/instance": self.name, "app.kubernetes.io/component": component}

    def metadata(self, name: str, component: str, **extra: Any) -> Obj:
        meta: Obj = {"name": name, "labels": self.labels(component)}
        if self.namespace:
            meta["namespace"] = self.namespace
        meta.update({key: value for key, value in extra.items() if value})
        return meta

    def promql_selector(self, component: str | None = None) -> str:
        """Label matchers for this service's engine series (labels added by the monitor)."""
        parts = [f'app_kubernetes_io_instance="{self.name}"']
        if component:
            parts.append(f'app_kubernetes_io_component="{component}"')
        if self.namespace:
            parts.append(f'namespace="{self.namespace}"')
        return ",".join(parts)
