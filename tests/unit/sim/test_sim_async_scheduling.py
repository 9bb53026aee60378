"""Async scheduling (vLLM's default since 0.14): which step a request joins, by when it arrives.

vLLM's engine core with async scheduling (``EngineCore.step_with_batch_queue``, a batch queue
of two) plans step n+1 as soon as step n is launched, and takes in new requests only between
steps; so a request that arrives while step n runs is first scheduled in step n+2, where
without it it is scheduled in step n+1. Request A decodes alone, one token per step; request
B arrives at a given point of A's steps; every case runs through the replay's step loop.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

from kubellm.sim import cli
from kubellm.sim.config import SimConfig
from kubellm.sim.fleet import build_engine
from kubellm.sim.metrics import EngineStats
from kubellm.sim.profiles import async_scheduling_of, get_profile
from kubellm.sim.replay import Arrival, Timeline, simulate
from kubellm.sim.scheduler import Limits, admission_cutoff

TINY = get_profile("tiny")
LIMITS = Limits(TINY.max_num_seqs, TINY.max_num_batched_tokens, 16)
A_TOKENS = 12


def _run(async_on: bool, arrivals: list[Arrival]) -> list[Timeline]:
    profile = TINY.model_copy(update={"async_scheduling": async_on})
    return simulate(profile, LIMITS, TINY.num_gpu_blocks, arrivals).timelines


def _a(output_tokens: int = A_TOKENS) -> Arrival:
    return Arrival(0.0, range(64), output_tokens)


def _b(at: float) -> Arrival:
    return Arrival(at, range(1000, 1064), 4)


def _a_alone(output_tokens: int = A_TOKENS) -> list[float]:
    """A's step ends when it runs alone (the same with and without async scheduling)."""
    return _run(False, [_a(output_tokens)])[0].token_times


def _mid(ends: list[float], k: int) -> float:
    """Halfway through the step that ends at A's token *k*."""
    return (ends[k - 1] + ends[k]) / 2


# (B arrives: when, given A's token times alone; with async scheduling; A's token B's first token comes with)
JOINS: list[tuple[str, Callable[[list[float]], float], bool, int]] = [
    ("mid-step", lambda e: _mid(e, 4), False, 5),  # the next step
    ("mid-step", lambda e: _mid(e, 4), True, 6),  # the step after next: the next one was planned already
    ("as a step starts", lambda e: e[3], False, 4),  # that step
    ("as a step starts", lambda e: e[3], True, 5),  # the step after: that one was planned as the last began
    ("just before a step ends", lambda e: e[4] - 1e-6, False, 5),
    ("just before a step ends", lambda e: e[4] - 1e-6, True, 6),
]


@pytest.mark.parametrize(("when", "at", "async_on", "joins_with"), JOINS,
                         ids=[f"{j[0]}-{'async' if j[2] else 'sync'}" for j in JOINS])
def test_a_request_arriving_while_a_step_runs_joins(when: str, at: Callable[[list[float]], float], async_on: bool,
                                                    joins_with: int) -> None:
    a, b = _run(async_on, [_a(), _b(at(_a_alone()))])
    assert b.token_times[0] == a.token_times[joins_with], when
    assert len(a.token_times) == A_TOKENS


@pytest.mark.parametrize("async_on", [False, True])
def test_an_idle_engine_is_unaffected(async_on: bool) -> None:
    """B arrives after A finished: it starts a step at once either way, as it would alone."""
    done = _a_alone(1)[-1]
    alone = _run(async_on, [_b(0.0)])[0].ttft
    _, b = _run(async_on, [_a(1), _b(done + 0.001)])
    assert b.ttft == pytest.approx(alone, abs=1e-12)


@pytest.mark.parametrize("async_on", [False, True])
def test_a_request_arriving_in_the_last_step_joins_the_next(async_on: bool) -> None:
    """Nothing was left to plan ahead during A's last step, so B runs when it ends, as without async."""
    ends = _a_alone(6)
    alone = _run(async_on, [_b(0.0)])[0].ttft
    _, b = _run(async_on, [_a(6), _b(_mid(ends, 5))])
    assert b.token_times[0] == pytest.approx(ends[5] + alone, abs=1e-12)


@pytest.mark.parametrize(("start", "last_step", "async_on", "cutoff"), [
    (2.0, (1.0, 2.0), True, 1.0),  # back to back: planned when the last step began
    (2.0, (1.0, 2.0), False, 2.0),
    (3.0, (1.0, 2.0), True, 3.0),  # the engine was idle in between
    (2.0, None, True, 2.0),  # first step
])
def test_admission_cutoff(start: float, last_step: tuple[float, float] | None, async_on: bool,
                          cutoff: float) -> None:
    assert admission_cutoff(start, last_step, async_on) == cutoff


@pytest.mark.parametrize(("release", "on"), [("0.6.0", False), ("0.13.2", False), ("0.14.0", True),
                                             ("0.21.0", True), ("1.0", True)])
def test_async_scheduling_is_the_default_from_vllm_0_14(release: str, on: bool) -> None:
    assert async_scheduling_of(release) is on
    assert get_profile("llama-3.1-8b-h100").with_vllm(release).async_scheduling is on


@pytest.mark.parametrize(("config", "on"), [(SimConfig(profile="tiny"), True),
                                            (SimConfig(profile="tiny", async_scheduling=False), False)])
def test_the_live_engine_schedules_as_configured(config: SimConfig, on: bool) -> None:
    """The live simulator impersonates current vLLM: on unless turned off (``--no-async-scheduling``)."""
    engine = build_engine(config, TINY, EngineStats(), 0)
    assert engine.scheduler.async_scheduling is on  # type: ignore[attr-defined]


def test_the_cli_mirrors_vllms_flag() -> None:
    app = typer.Typer()
    cli.register(app)
    app.command("version")(lambda: None)  # two commands, so that "sim" is a subcommand
    result = CliRunner().invoke(app, ["sim", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--no-async-scheduling" in result.output
