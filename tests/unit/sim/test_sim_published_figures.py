"""The cost model beside published vLLM runs, within the tolerances docs/sim.md states."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.sim.calibration import METRICS, PUBLISHED, TOLERANCE, PublishedRun, comparison, markdown_table
from kubellm.sim.profiles import profile_names

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sim.md"


@pytest.mark.parametrize("run", PUBLISHED, ids=lambda r: r.name)
def test_transcribed_figures_are_consistent(run: PublishedRun) -> None:
    """The copied numbers agree with each other as the benchmark client computes them."""
    assert len(run.input_lens) == len(run.output_lens)
    assert run.profile in profile_names()
    assert run.figures and set(run.figures) <= set(METRICS)
    if {"duration_s", "output_throughput"} <= set(run.figures):
        throughput = sum(run.output_lens) / run.figures["duration_s"].value
        assert throughput == pytest.approx(run.figures["output_throughput"].value, rel=1e-3)
    if run.relative_to is not None:
        assert run.relative_to in {r.name for r in PUBLISHED if r is not run}


@pytest.mark.parametrize("run", PUBLISHED, ids=lambda r: r.name)
def test_every_figure_the_model_is_not_held_to_says_why(run: PublishedRun) -> None:
    assert set(run.unclaimed) <= set(run.figures)
    assert all(len(why) > 20 for why in run.unclaimed.values())


def test_the_table_covers_several_batch_sizes_and_prompt_lengths_with_claimed_figures() -> None:
    claimed = [(r.clients or len(r.input_lens), r.input_lens[0]) for r in PUBLISHED
               if set(r.figures) - set(r.unclaimed)]
    assert len({batch for batch, _ in claimed}) >= 4
    assert len({prompt for _, prompt in claimed}) >= 3


@pytest.mark.parametrize("row", comparison(), ids=lambda r: r[0].name)
def test_model_is_within_the_stated_tolerance_of_each_claimed_figure(row: tuple) -> None:
    run, model, errors = row
    for metric in set(run.figures) - set(run.unclaimed):
        assert abs(errors[metric]) <= TOLERANCE[metric], (run.name, metric, run.figures[metric], model[metric])


def test_docs_show_the_table_the_code_computes() -> None:
    assert markdown_table() in DOCS.read_text()
