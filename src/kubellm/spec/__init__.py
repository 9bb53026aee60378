"""kubellm.spec: the LLMService resource as pydantic models, its loading and validation.

Public surface: ``LLMService``, ``LLMServiceSpec``, ``load_spec``, ``load_spec_text``,
``parse_spec``, ``check_target``, ``SpecError``/``SpecIssue``. The spec imports nothing from
other kubellm components; they all import it. Errors are drawn in ``kubellm.spec.errors``.
"""

from kubellm.spec.checks import check_target
from kubellm.spec.errors import SpecError, SpecIssue, SpecLoadError
from kubellm.spec.load import load_spec, load_spec_text, parse_spec
from kubellm.spec.service import API_VERSION, KIND, LLMService, LLMServiceSpec, Metadata

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
