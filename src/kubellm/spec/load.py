"""Reading specs: YAML file or mapping -> LLMService, every error mapped to SpecError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubellm.spec.errors import CrossFieldError, SpecError, SpecIssue, SpecLoadError
from kubellm.spec.service import LLMService

_HINTS = {
    "extra_forbidden": "remove this field or check its spelling (keys are camelCase)",
    "missing": "add this required field",
    "literal_error": "use one of the listed values",
    "string_pattern_mismatch": "fix the value's form",
}


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def issues_from_validation(error: ValidationError) -> list[SpecIssue]:
    """Turn pydantic's errors into SpecIssues, unwrapping our cross-field errors."""
    issues: list[SpecIssue] = []
    for detail in error.errors(include_url=False):
        if detail["type"] == "default_factory_not_called":
            continue  # a consequence of another field's error, reported on its own
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldError):
            issues.extend(cause.issues)
            continue
        message = str(detail["msg"]).removeprefix("Value error, ")
        issues.append(SpecIssue(_path(detail["loc"]), message, _HINTS.get(detail["type"], "")))
    return issues


def parse_spec(data: Any) -> LLMService:
    """Validate a mapping (already parsed YAML/JSON) as an LLMService."""
    if not isinstance(data, dict):
        raise SpecLoadError([SpecIssue("", "the spec must be a mapping", "start with apiVersion: kubellm.dev/v1alpha1")])
    try:
        return LLMService.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc)) from exc


def load_spec_text(text: str, source: str = "<string>") -> LLMService:
    """Parse one YAML document of *text* as an LLMService."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise SpecLoadError([SpecIssue("", f"{source} is not valid YAML: {exc}", "fix the YAML syntax")]) from exc
    if len(documents) != 1:
        raise SpecLoadError(
            [SpecIssue("", f"{source} holds {len(documents)} YAML documents", "put exactly one LLMService in the file")]
        )
    return parse_spec(documents[0])


def load_spec(path: str | Path) -> LLMService:
    """Read the LLMService in the YAML file at *path*."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecLoadError([SpecIssue("", f"cannot read {path}: {exc.strerror}", "check the file's path")]) from exc
    return load_spec_text(text, str(path))
