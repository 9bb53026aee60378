"""Published vLLM measurements beside what the cost model predicts for the same workload (pure).

Each :class:`PublishedRun` is one result file of ``benchmarks/benchmark_serving.py`` that
lists its per-request prompt and output lengths, so the workload can be replayed exactly:
every request sent at once (``request_rate: inf``), each generating the number of tokens
it generated in the published run. :func:`predict` replays it with
:func:`kubellm.sim.replay.simulate` and computes the metrics the way ``benchmark_serving``
does. ``docs/sim.md`` ("Published figures beside the model") prints the table and states
the tolerances; ``bench/sim_fleet.py --published`` prints it too.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from kubellm.sim.profiles import get_profile
from kubellm.sim.replay import Arrival, simulate
from kubellm.sim.scheduler import Limits

LAMBDA = "https://github.com/LambdaLabsML/vllm-benchmark/blob/a4f9f4371a1ccac781293837fce2bce0cc6d25cc/"


@dataclass(frozen=True)
class PublishedRun:
    """One published benchmark run: where it is, its workload, and its reported figures."""

    name: str
    profile: str
    source: str
    setup: str
    input_lens: tuple[int, ...]
    output_lens: tuple[int, ...]
    duration_s: float
    median_ttft_ms: float
    median_tpot_ms: float
    output_throughput: float  # tokens/s

    @property
    def measured(self) -> list[bool]:
        """Which requests the published figures measured: those that streamed text.

        A request whose first token was EOS streams no text; benchmark_serving records
        it with 0 tokens and a TTFT of 0, but the engine still computed its prompt.
        """
        return [o > 0 for o in self.output_lens]


# The ten ShareGPT requests benchmark_serving draws with its default seed; both runs sent the same ones.
_SHAREGPT_10_INPUTS = (13, 25, 27, 10, 329, 29, 399, 328, 4, 205)

PUBLISHED: tuple[PublishedRun, ...] = (
    PublishedRun(
        name="Llama 3 8B Instruct, 1xH100 SXM, TP1",
        profile="llama-3.1-8b-h100",
        source=LAMBDA + "results/prompt_10/1xH100-80GB-SXM/Meta-Llama-3-8B-Instruct_tp1_len2048.json",
        setup="Lambda, 2024-09-07: 10 ShareGPT prompts at once, max_model_len 2048, max_num_seqs 1024",
        input_lens=_SHAREGPT_10_INPUTS,
        output_lens=(120, 429, 233, 194, 101, 741, 9, 3, 6, 31),
        duration_s=5.3666, median_ttft_ms=62.19, median_tpot_ms=7.558, output_throughput=347.9,
    ),
    PublishedRun(
        name="Llama 3 70B Instruct, 4xH100 SXM, TP4",
        profile="llama-3.1-70b-h100-tp4",
        source=LAMBDA + "results/prompt_10/4xH100-80GB-SXM/Meta-Llama-3-70B-Instruct_tp4_len2048.json",
        setup="Lambda, 2024-09-07: the same 10 prompts (two streamed no text: EOS first)",
        input_lens=_SHAREGPT_10_INPUTS,
        output_lens=(120, 661, 233, 194, 101, 741, 0, 0, 6, 35),
        duration_s=13.071, median_ttft_ms=140.56, median_tpot_ms=18.117, output_throughput=159.97,
    ),
)

# Relative error |model / published - 1| the docs promise and the unit test checks.
TOLERANCE = {"duration_s": 0.15, "median_tpot_ms": 0.15, "output_throughput": 0.15, "median_ttft_ms": 0.15}


def predict(run: PublishedRun) -> dict[str, float]:
    """The cost model's figures for *run*'s workload, computed as benchmark_serving computes them."""
    profile = get_profile(run.profile)
    limits = Limits(profile.max_num_seqs, profile.max_num_batched_tokens, 16)
    arrivals, base = [], 1 << 30
    for n, (prompt, out) in enumerate(zip(run.input_lens, run.output_lens)):
        # distinct ids: ShareGPT prompts share no prefix (and APC was off by default in vLLM 0.5/0.6)
        arrivals.append(Arrival(0.0, range(base + n * 10_000, base + n * 10_000 + prompt), max(out, 1)))
    result = simulate(profile, limits, profile.num_gpu_blocks, arrivals, enable_caching=False)
    timelines = [tl for tl, seen in zip(result.timelines, run.measured) if seen]
    # the client's clock also runs while the API server takes the request in (api_server_s)
    ttfts = [tl.ttft + profile.api_server_s for tl in timelines]
    tpots = [tl.tpot for tl in timelines if len(tl.token_times) > 1]
    duration = max(tl.token_times[-1] for tl in result.timelines) + profile.api_server_s
    return {"duration_s": duration, "median_ttft_ms": 1000 * statistics.median(ttfts),
            "median_tpot_ms": 1000 * statistics.median(tpots),
            "output_throughput": sum(run.output_lens) / duration}


def comparison() -> list[tuple[PublishedRun, dict[str, float], dict[str, float]]]:
    """(run, model figures, relative errors model / published - 1) for every published run."""
    rows = []
    for run in PUBLISHED:
        model = predict(run)
        errors = {k: model[k] / getattr(run, k) - 1 for k in TOLERANCE}
        rows.append((run, model, errors))
    return rows


def markdown_table() -> str:
    """The table docs/sim.md shows (published / model, error)."""
    lines = ["| Run | TPOT median (ms) | TTFT median (ms) | duration (s) | output tokens/s |",
             "|---|---|---|---|---|"]
    for run, model, err in comparison():
        cells = [f"{getattr(run, k):.4g} / {model[k]:.4g} ({err[k]:+.0%})"
                 for k in ("median_tpot_ms", "median_ttft_ms", "duration_s", "output_throughput")]
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
