"""Shared fixtures: every example spec, loaded and rendered once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functools
from collections.abc import Iterator

import kubernetes_validate.utils
import pytest

from kubellm.render import render
from kubellm.spec import LLMService, load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_PATHS = sorted(EXAMPLES.glob("*.yaml"))


def example_ids() -> list[str]:
    return [p.stem for p in EXAMPLE_PATHS]


@pytest.fixture(scope="session")
def example_specs() -> dict[str, LLMService]:
    return {p.stem: load_spec(p) for p in EXAMPLE_PATHS}


@pytest.fixture(scope="session")
def rendered(example_specs: dict[str, LLMService]) -> dict[str, list[dict[str, Any]]]:
    return {name: render(spec, "1.31") for name, spec in example_specs.items()}


@pytest.fixture(scope="session", autouse=True)
def _cached_kubernetes_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its JSON schema files (several MB) on every call; cache
    them for the session. Validation itself is unchanged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents", functools.cache(kubernetes_validate.utils.schema_contents))
        yield
