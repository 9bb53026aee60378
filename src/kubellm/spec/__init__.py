"""kubellm.spec: the LLMService resource as pydantic models, its loading and validation.

Public surface: ``LLMService``, ``LLMServiceSpec``, ``load_spec``, ``load_spec_text``,
``parse_spec``, ``check_target``, ``SpecError``/``SpecIssue``. The spec imports nothing from
other kubellm components; they all import it. Errors are drawn in ``kubellm.spec.errors``.

The names load on first use (PEP 562): ``kubellm pull`` needs only ``kubellm.spec.uri``, and
importing every model with it cost 0.1 s of each loader Job's start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubellm.spec.checks import check_target
    from kubellm.spec.errors import SpecError, SpecIssue, SpecLoadError
    from kubellm.spec.load import load_spec, load_spec_text, parse_spec
    from kubellm.spec.service import API_VERSION, KIND, LLMService, LLMServiceSpec, Metadata

_HOMES = {
    "check_target": "checks",
    **dict.fromkeys(("SpecError", "SpecIssue", "SpecLoadError"), "errors"),
    **dict.fromkeys(("load_spec", "load_spec_text", "parse_spec"), "load"),
    **dict.fromkeys(("API_VERSION", "KIND", "LLMService", "LLMServiceSpec", "Metadata"), "service"),
}

__all__ = [
    "API_VERSION",
    "KIND",
    "LLMService",
    "LLMServiceSpec",
    "Metadata",
    "SpecError",
    "SpecIssue",
    "SpecLoadError",
    "check_target",
    "load_spec",
    "load_spec_text",
    "parse_spec",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
