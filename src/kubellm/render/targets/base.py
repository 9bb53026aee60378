"""What a target returns, and how it finds the spec fields it cannot express.

A target lists rules: a spec path (camelCase, as users write it) and why the target has no
place for it. A rule applies when the spec sets that path to something other than its
default, or when its own predicate says so (a feature that is on by default, such as the
NetworkPolicy, is lost just the same). Nothing is dropped silently: every applying rule
becomes an ``Unexpressed`` the command prints, and ``--strict`` turns into an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubellm.render.context import Obj
from kubellm.render.errors import UnexpressibleError
from kubellm.spec.service import LLMServiceSpec

Predicate = Callable[[LLMServiceSpec], bool]


@dataclass(frozen=True)
class Unexpressed:
    """One spec field a target renders nothing for."""

    field: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"spec.{self.field}: target {self.target} cannot express it ({self.reason})"


@dataclass(frozen=True)
class Rendered:
    """A target's objects in apply order and the fields it could not express."""

    objects: list[Obj]
    unexpressed: list[Unexpressed] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """*path* is lost on this target because of *reason*; *when* overrides "set and not default"."""

    path: str
    reason: str
    when: Predicate | None = None


def non_defaults(spec: LLMServiceSpec) -> dict[str, Any]:
    """The spec's fields that differ from their defaults, camelCase, nested."""
    dumped: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return dumped


def _is_set(values: dict[str, Any], path: str) -> bool:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def unexpressed(spec: LLMServiceSpec, target: str, rules: Sequence[Rule]) -> list[Unexpressed]:
    values = non_defaults(spec)
    found = []
    for rule in rules:
        applies = rule.when(spec) if rule.when is not None else _is_set(values, rule.path)
        if applies:
            found.append(Unexpressed(rule.path, target, rule.reason))
    return found


def check_strict(rendered: Rendered, strict: bool) -> Rendered:
    """*rendered* as is, or UnexpressibleError listing what it lost when *strict*."""
    if strict and rendered.unexpressed:
        lines = "\n  ".join(str(u) for u in rendered.unexpressed)
        raise UnexpressibleError(f"--strict: {len(rendered.unexpressed)} spec field(s) cannot be expressed:\n  {lines}")
    return rendered
