"""The cost model beside published vLLM runs, within the tolerances docs/sim.md states."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from kubellm.sim import calibration, replay

from kubellm.sim.calibration import (
    MEASURED_CLIENT_COST_S, METRICS, PUBLISHED, TOLERANCE, PublishedRun, comparison, markdown_table, predict, served_by,
)
from kubellm.sim.profiles import FRONTENDS, FrontendCost, Profile, frontend_of, get_profile, profile_names

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
    assert set(run.fitted) <= set(run.figures) and not set(run.fitted) & set(run.unclaimed)


@pytest.mark.parametrize("run", PUBLISHED, ids=lambda r: r.name)
def test_each_run_is_replayed_with_the_api_server_of_its_vllm_generation(run: PublishedRun) -> None:
    expected, async_on = {"0.6.0": ("v0", False), "0.21.0": ("v1", True), "0.23.0": ("v1", True)}[run.vllm]
    assert frontend_of(run.vllm) == expected
    assert served_by(run).api_server_s == FRONTENDS[expected].api_server_s
    assert served_by(run).async_scheduling is async_on


def test_the_v1_api_server_cost_is_fitted_to_one_v1_figure_only() -> None:
    """V1's cost is the C=1 TTFT less the model's engine time there; every other V1 figure is a check."""
    fitted = [(run, k) for run in PUBLISHED for k in run.fitted]
    assert len(fitted) == 1
    run, metric = fitted[0]
    assert frontend_of(run.vllm) == "v1" and metric == "median_ttft_ms"
    engine_ms = predict(run)[metric] - 1000 * FRONTENDS["v1"].api_server_s
    assert 1000 * FRONTENDS["v1"].api_server_s == pytest.approx(run.figures[metric].value - engine_ms, abs=0.05)


def test_the_measured_client_stagger_is_not_a_robust_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/sim.md says of modelling the client's stagger with the value measured here.

    Requests that one aiohttp process takes up together leave it ~0.05 ms apart. In the C=4
    replay the first then reaches the idle engine alone, and the other three arrive while its
    prefill runs, so with async scheduling (vLLM 0.21) they wait for the step after next: the
    model's TTFT goes from 14.05 to 28.07 ms (+23%). It turns on 7.0 ms of API server plus
    0.05-0.15 ms of stagger being a hair longer than a 7.06 ms step: with 6.9 ms it is 21.09
    ms (-7%). Lambda's 8B TTFT leaves the tolerance with it (+18%). So the table replays without it.
    """
    by_name = {run.name: run for run in PUBLISHED}
    c4 = by_name["Llama 3.1 8B Instruct, 1xH100 80GB HBM3, C=4"]
    published = c4.figures["median_ttft_ms"].value
    assert predict(c4)["median_ttft_ms"] < 0.7 * published
    assert predict(c4, MEASURED_CLIENT_COST_S)["median_ttft_ms"] == pytest.approx(28.07, abs=0.1)
    monkeypatch.setitem(FRONTENDS, "v1", FrontendCost(0.0069, "0.1 ms less than the fit"))
    assert predict(c4, MEASURED_CLIENT_COST_S)["median_ttft_ms"] == pytest.approx(21.09, abs=0.1)
    lam = by_name["Llama 3 8B Instruct, 1xH100 SXM, TP1"]
    ttft = predict(lam, MEASURED_CLIENT_COST_S)["median_ttft_ms"] / lam.figures["median_ttft_ms"].value - 1
    assert ttft > TOLERANCE["median_ttft_ms"]


def _served_with_async(on: bool) -> Callable[[PublishedRun], Profile]:
    return lambda run: get_profile(run.profile).with_vllm(run.vllm).model_copy(update={"async_scheduling": on})


def _random_phase(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Each client takes up its next request a random fraction of a 7.06 ms step after its last
    one ended (outside the next one's TTFT), so requests reach the engine at random points of a step."""
    rng = random.Random(seed)

    def finished(self: replay._ClosedLoop, t: float) -> None:
        heapq.heappush(self._free, t + rng.random() * 0.00706)

    monkeypatch.setattr(replay._ClosedLoop, "finished", finished)


def test_c4_ttft_with_and_without_async_scheduling(monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/sim.md says async scheduling does to InferenceBench's C=4 TTFT (22.75 ms).

    The table's replay stays in step: each round's four requests reach an idle engine, which
    async scheduling leaves alone, so the figure is 14.05 ms with it or without (-38%, †). At
    random points of a step (an experiment, seeds 1-3) the model gives 24.3-24.5 ms with it,
    within 15%, and 17.3-17.5 ms without (-23%); C=1 stays at 14.01 ms either way.
    """
    by_name = {run.name: run for run in PUBLISHED}
    c1 = by_name["Llama 3.1 8B Instruct, 1xH100 80GB HBM3, C=1"]
    c4 = by_name["Llama 3.1 8B Instruct, 1xH100 80GB HBM3, C=4"]
    published = c4.figures["median_ttft_ms"].value
    assert "median_ttft_ms" in c4.unclaimed
    figures: dict[tuple[bool, int], tuple[float, float]] = {}
    for on in (False, True):
        monkeypatch.setattr(calibration, "served_by", _served_with_async(on))
        assert predict(c4)["median_ttft_ms"] == pytest.approx(14.05, abs=0.01)
        for seed in (1, 2, 3):
            with monkeypatch.context() as patched:
                _random_phase(patched, seed)
                figures[on, seed] = predict(c1)["median_ttft_ms"], predict(c4)["median_ttft_ms"]
    for (on, _), (ttft_c1, ttft_c4) in figures.items():
        assert ttft_c1 == pytest.approx(14.01, abs=0.01)
        if on:
            assert 24.2 <= ttft_c4 <= 24.6 and abs(ttft_c4 / published - 1) <= TOLERANCE["median_ttft_ms"]
        else:
            assert 17.2 <= ttft_c4 <= 17.6 and ttft_c4 / published - 1 < -TOLERANCE["median_ttft_ms"]


def test_the_table_covers_several_batch_sizes_and_prompt_lengths_with_claimed_figures() -> None:
    claimed = [(r.clients or len(r.input_lens), r.input_lens[0]) for r in PUBLISHED
               if set(r.figures) - set(r.unclaimed) - set(r.fitted)]
    assert len({batch for batch, _ in claimed}) >= 4
    assert len({prompt for _, prompt in claimed}) >= 3


@pytest.mark.parametrize("row", comparison(), ids=lambda r: r[0].name)
def test_model_is_within_the_stated_tolerance_of_each_claimed_figure(row: tuple) -> None:
    run, model, errors = row
    for metric in set(run.figures) - set(run.unclaimed):
        assert abs(errors[metric]) <= TOLERANCE[metric], (run.name, metric, run.figures[metric], model[metric])


def test_docs_show_the_table_the_code_computes() -> None:
    assert markdown_table() in DOCS.read_text()
