"""charts/kubellm's generated parts (the CRD, the operator's ClusterRole) are what
scripts/gen_chart.py writes from `kubellm install`'s code (regenerate with it when this
fails). The chart against helm itself: tests/integration/operator/test_operator_helm.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_chart", ROOT / "scripts" / "gen_chart.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_chart_files_are_current() -> None:
    files = _generator().files()  # type: ignore[attr-defined]
    assert len(files) == 2
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    assert stale == [], "run .venv/bin/python scripts/gen_chart.py"


def test_the_chart_version_is_kubellms() -> None:
    from kubellm import __version__

    chart = yaml.safe_load((ROOT / "charts" / "kubellm" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts" / "kubellm" / "values.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == __version__
    assert values["image"].endswith(f":{__version__}")
