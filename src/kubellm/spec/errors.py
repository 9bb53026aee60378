"""Errors of the spec component.

Exception tree::

    SpecError                  a spec cannot be used; carries one or more SpecIssue
    └── SpecLoadError          the file could not be read or is not one YAML mapping

    CrossFieldError(ValueError)  raised inside pydantic validators for rules that span
                                 fields; pydantic wraps it, ``load.py`` unwraps it into a
                                 SpecError so the user sees the exact field path and hint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where (dotted camelCase path), what, and how to fix it."""

    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class SpecError(Exception):
    """A spec that cannot be used. ``issues`` lists every problem found."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(issue.render() for issue in self.issues))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(issue.path for issue in self.issues)


class SpecLoadError(SpecError):
    """The spec file is missing, unreadable, or not a single YAML mapping."""


class CrossFieldError(ValueError):
    """A rule spanning several fields failed; carries absolute paths and hints."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in issues))
