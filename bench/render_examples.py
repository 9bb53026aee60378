"""Print how long loading, validating and rendering each example takes (median of N runs),
and the size of what it renders. `kubellm render` should never be the slow part of a
deploy or of an operator's reconcile loop; this shows it.

    .venv/bin/python bench/render_examples.py [--runs 50]
"""

from __future__ import annotations

import argparse
import sys
import statistics
import time
from pathlib import Path

import yaml

from kubellm.render import render
from kubellm.render import output
from kubellm.render.output import to_stream
from kubellm.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(action: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    print(f"{'example':24} {'load+validate ms':>17} {'render ms':>10} {'YAML ms':>8} {'pure-Py YAML ms':>16} {'ratio':>6} {'objects':>8} {'bytes':>8}")
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        service = load_spec(path)
        objects = render(service)
        load_ms = _median_ms(lambda: load_spec(path), runs)
        render_ms = _median_ms(lambda: render(service), runs)
        yaml_ms = _median_ms(lambda: to_stream(objects), runs)
        baseline_ms = _median_ms(lambda: _pure_python_stream(objects), runs)
        assert _pure_python_stream(objects) == to_stream(objects), "emitters disagree"
        print(f"{path.stem:24} {load_ms:17.2f} {render_ms:10.2f} {yaml_ms:8.2f} {baseline_ms:16.2f} "
              f"{baseline_ms / yaml_ms:6.1f} {len(objects):8d} {len(to_stream(objects)):8d}")
        sys.stdout.flush()


class _PureDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


_PureDumper.add_representer(str, output._str)


def _pure_python_stream(objects: list[dict[str, object]]) -> str:
    """Baseline: the same serialisation with PyYAML's pure-Python emitter."""
    dump = lambda o: yaml.dump(o, Dumper=_PureDumper, sort_keys=True, default_flow_style=False, width=120)  # noqa: E731
    return "".join(f"---\n{dump(o)}" for o in objects)


if __name__ == "__main__":
    main()
