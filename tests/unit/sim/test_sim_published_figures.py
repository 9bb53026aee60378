"""The cost model beside published vLLM runs, within the tolerances docs/sim.md states."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.sim.calibration import PUBLISHED, TOLERANCE, PublishedRun, comparison, markdown_table

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sim.md"


@pytest.mark.parametrize("run", PUBLISHED, ids=lambda r: r.profile)
def test_transcribed_figures_are_consistent(run: PublishedRun) -> None:
    """The copied numbers agree with each other as benchmark_serving computes them."""
    assert len(run.input_lens) == len(run.output_lens)
    assert sum(run.output_lens) / run.duration_s == pytest.approx(run.output_throughput, rel=1e-3)


@pytest.mark.parametrize("row", comparison(), ids=lambda r: r[0].profile)
def test_model_is_within_the_stated_tolerance_of_each_published_run(row: tuple) -> None:
    run, model, errors = row
    for metric, tolerance in TOLERANCE.items():
        assert abs(errors[metric]) <= tolerance, (run.name, metric, getattr(run, metric), model[metric])


def test_docs_show_the_table_the_code_computes() -> None:
    assert markdown_table() in DOCS.read_text()
