"""The base of every spec model: camelCase YAML keys, unknown keys rejected, immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Strict, frozen, camelCase-aliased; Python code may still use snake_case names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=False,
    )


class SecretKeyRef(SpecModel):
    """A key in a Kubernetes Secret in the service's namespace."""

    name: str
    """Name of the Secret."""
    key: str = "token"
    """Key inside the Secret."""


class SecretRef(SpecModel):
    """A whole Kubernetes Secret, mounted or exposed as environment variables."""

    name: str
    """Name of the Secret in the service's namespace."""
