"""Golden files: each example's rendered YAML stream is compared byte for byte with
golden/<example>.yaml. After an intended change, refresh them with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/render/test_render_golden.py

and review the diff before committing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kubellm.render.output import to_stream

from .conftest import example_ids

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("example", example_ids())
def test_rendered_example_matches_its_golden_file(example: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    text = to_stream(rendered[example])
    assert "&id0" not in text  # no YAML anchors/aliases in what people read and diff
    path = GOLDEN / f"{example}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{example} changed; if intended, refresh with UPDATE_GOLDEN=1"


def test_libyaml_and_pure_python_emitters_write_the_same_bytes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Output must not depend on whether PyYAML was built with libyaml."""
    import yaml

    from kubellm.render import output

    class PureDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    PureDumper.add_representer(str, output._str)
    for objects in rendered.values():
        pure = "".join(
            "---\n" + yaml.dump(o, Dumper=PureDumper, sort_keys=True, default_flow_style=False, width=120) for o in objects
        )
        assert pure == to_stream(objects)
