"""Layers point one way: spec imports no other kubellm component; render imports only spec
(and the package version). Checked on the source, like an import-linter contract."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "kubellm"
# kubellm.kvhash (vLLM's block hashing) is a leaf library that imports nothing of kubellm
# (tests/unit/kvhash checks it): spec validates hash settings and render sets them with it.
ALLOWED = {"spec": {"kubellm.spec", "kubellm.kvhash"},
           "render": {"kubellm.spec", "kubellm.render", "kubellm", "kubellm.kvhash"}}
# The render command (an I/O edge, not the renderer) also emits the gateway's config.
EDGE_ALLOWED = {("render", "cli.py"): {"kubellm.gateway"}}


def kubellm_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kubellm"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kubellm")}
    return found


@pytest.mark.parametrize("component", sorted(ALLOWED))
def test_component_imports_only_what_its_layer_allows(component: str) -> None:
    for path in sorted((SRC / component).glob("*.py")):
        allowed = ALLOWED[component] | EDGE_ALLOWED.get((component, path.name), set())
        for module in kubellm_imports(path):
            top = ".".join(module.split(".")[:2]) if module != "kubellm" else "kubellm"
            assert top in allowed, f"{path.name} imports {module}"


def test_every_public_name_of_the_spec_resolves_to_its_home_module() -> None:
    """The package loads its names lazily (PEP 562): each must still be there, the very object."""
    import importlib

    import kubellm.spec as spec

    assert set(spec.__all__) == set(spec._HOMES)
    for name in spec.__all__:
        home = importlib.import_module(f"kubellm.spec.{spec._HOMES[name]}")
        assert getattr(spec, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no attribute 'LLMServce'"):
        spec.LLMServce  # noqa: B018
