"""Published vLLM measurements beside what the cost model predicts for the same workload (pure).

Each :class:`PublishedRun` is one published benchmark run whose workload is known request by
request: Lambda's ``benchmark_serving.py`` result files list every request's prompt and
output length (all sent at once, ``request_rate: inf``); a ``vllm bench serve --dataset-name
random --ignore-eos`` sweep has fixed lengths, and ``--max-concurrency C`` makes its client
a closed loop of C senders, each sending its next request when its last one ends.
:func:`predict` replays the workload with :mod:`kubellm.sim.replay` and computes the metrics
the way the benchmark client does. A run carries only the figures its source states
(:class:`Figure`, saying when we derived one from the source's words); a run with
``relative_to`` states them as multiples of another run's. ``docs/sim.md`` ("Published
figures beside the model") prints the table and the sources; ``bench/sim_fleet.py
--published`` prints it too.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubellm.sim.profiles import Profile, get_profile
from kubellm.sim.replay import Arrival, Run, serial_sends, simulate, simulate_closed_loop
from kubellm.sim.scheduler import Limits

LAMBDA = "https://github.com/LambdaLabsML/vllm-benchmark/blob/a4f9f4371a1ccac781293837fce2bce0cc6d25cc/"
MUSGRAVE = "https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on"
INFERENCEBENCH = ("https://github.com/yobitelcomm/bench/blob/1a865f62a7e51f3d8f133b46452a5b18a2f2bd7e/"
                  "docs/recipes/concurrency-sweep.md")

# the metrics a run may state, in the table's column order, with their column titles
METRICS = {"median_tpot_ms": "TPOT median (ms)", "median_ttft_ms": "TTFT median (ms)",
           "duration_s": "duration (s)", "output_throughput": "output tokens/s"}


@dataclass(frozen=True)
class Figure:
    """One published figure: as printed, or derived from the source's words (``derived`` says how)."""

    value: float
    derived: str = ""


@dataclass(frozen=True)
class PublishedRun:
    """One published benchmark run: where it is, its workload, and the figures it states."""

    name: str
    profile: str
    source: str
    setup: str
    input_lens: tuple[int, ...]
    output_lens: tuple[int, ...]
    figures: Mapping[str, Figure]
    vllm: str  # the vLLM release that served it: its engine generation sets the API server's cost
    clients: int | None = None  # --max-concurrency: a closed loop of this many senders; None: all at once
    relative_to: str | None = None  # the figures are multiples of this run's (same metric)
    workload: str = ""  # how the table names the workload
    unclaimed: Mapping[str, str] = field(default_factory=dict)  # metric -> why the model is not held to it
    fitted: Mapping[str, str] = field(default_factory=dict)  # metric -> the model figure fitted to it (no check)

    @property
    def measured(self) -> list[bool]:
        """Which requests the published figures measured: those that streamed text.

        A request whose first token was EOS streams no text; benchmark_serving records
        it with 0 tokens and a TTFT of 0, but the engine still computed its prompt.
        """
        return [o > 0 for o in self.output_lens]


# The ten ShareGPT requests benchmark_serving draws with its default seed; both runs sent the same ones.
_SHAREGPT_10_INPUTS = (13, 25, 27, 10, 329, 29, 399, 328, 4, 205)


def _printed(**values: float) -> dict[str, Figure]:
    return {k: Figure(v) for k, v in values.items()}


def _clients(n: int) -> str:
    return f"{n} client{'s' if n > 1 else ''}"


def _lambda_run(name: str, profile: str, path: str, setup: str, output_lens: tuple[int, ...],
                **values: float) -> PublishedRun:
    return PublishedRun(name=name, profile=profile, source=LAMBDA + path, setup=setup,
                        input_lens=_SHAREGPT_10_INPUTS, output_lens=output_lens, figures=_printed(**values),
                        vllm="0.6.0", workload="10 ShareGPT prompts at once")


def _musgrave_run(clients: int, figures: dict[str, Figure], relative_to: str | None = None) -> PublishedRun:
    """One point of the A100 sweep: ``--max-concurrency C --num-prompts 20*C``, 1024 in, 128 out."""
    n = 20 * clients
    return PublishedRun(
        name=f"Llama 3.1 8B Instruct, 1xA100 40GB, C={clients}", profile="llama-3.1-8b-a100-40gb",
        source=MUSGRAVE,
        setup=f"vLLM 0.23.0, vllm bench serve --dataset-name random --random-input-len 1024 "
              f"--random-output-len 128 --ignore-eos --max-concurrency {clients} --num-prompts {n}",
        input_lens=(1024,) * n, output_lens=(128,) * n, figures=figures, vllm="0.23.0", clients=clients,
        relative_to=relative_to, workload=f"{_clients(clients)}, 1024 in / 128 out")


_MUSGRAVE_C1 = _musgrave_run(1, {"median_tpot_ms": Figure(
    1000 / 75, "1000 / 75: 'decode at one request per time runs at about 75 tokens/sec'")})

_V1_FIT = "the V1 API-server cost (7.0 ms) is fitted to this figure: 13.98 ms less the model's 7.01 ms first step"
_IN_STEP = ("the replay stays in step: its four identical requests prefill together and finish together, "
            "so each round's four reach an idle engine 7.0 ms later, and async scheduling (on in 0.21), which "
            "delays only requests arriving while a step runs, changes nothing here; real ones (EOS-ended, "
            "jittered steps) arrive at random points of a step, and there the model with async scheduling "
            "gives 24.3-24.5 ms (+7 to +8%, pinned by a test), without it 17.3-17.5 ms (docs/sim.md)")
_CLIENT_BOUND = ("client-bound: the client (one Python process, litellm, a thread per request) took "
                 "stream chunks at the same ~1,400/s at C=16 (16 / 10.94 ms) and C=64 (64 / 46.91 ms)")


def _inferencebench_run(clients: int, ttft_ms: float, tpot_ms: float, unclaimed: dict[str, str],
                        fitted: dict[str, str] | None = None) -> PublishedRun:
    """One point of InferenceBench's H100 sweep: closed loop of C workers, 10 short chat prompts."""
    return PublishedRun(
        name=f"Llama 3.1 8B Instruct, 1xH100 80GB HBM3, C={clients}", profile="llama-3.1-8b-h100",
        source=INFERENCEBENCH,
        setup=f"vLLM 0.21.0, fp16, 2026-05-16: bench run llm.inference.chatbot-short --sweep 1,4,16,64 "
              f"(C={clients} workers back to back for 120 s, 10 built-in prompts, max_tokens 128)",
        input_lens=(45,) * 200, output_lens=(128,) * 200, vllm="0.21.0", clients=clients,
        figures=_printed(median_ttft_ms=ttft_ms, median_tpot_ms=tpot_ms), unclaimed=unclaimed, fitted=fitted or {},
        workload=f"{_clients(clients)}, ~45 in / <=128 out")


PUBLISHED: tuple[PublishedRun, ...] = (
    _lambda_run("Llama 3 8B Instruct, 1xH100 SXM, TP1", "llama-3.1-8b-h100",
                "results/prompt_10/1xH100-80GB-SXM/Meta-Llama-3-8B-Instruct_tp1_len2048.json",
                "Lambda, 2024-09-07: 10 ShareGPT prompts at once, max_model_len 2048, max_num_seqs 1024",
                (120, 429, 233, 194, 101, 741, 9, 3, 6, 31),
                median_tpot_ms=7.558, median_ttft_ms=62.19, duration_s=5.3666, output_throughput=347.9),
    _lambda_run("Llama 3 70B Instruct, 4xH100 SXM, TP4", "llama-3.1-70b-h100-tp4",
                "results/prompt_10/4xH100-80GB-SXM/Meta-Llama-3-70B-Instruct_tp4_len2048.json",
                "Lambda, 2024-09-07: the same 10 prompts (two streamed no text: EOS first)",
                (120, 661, 233, 194, 101, 741, 0, 0, 6, 35),
                median_tpot_ms=18.117, median_ttft_ms=140.56, duration_s=13.071, output_throughput=159.97),
    _MUSGRAVE_C1,
    _musgrave_run(8, {"output_throughput": Figure(6.6, "'Batching buys throughput almost for free up to a "
                                                       "concurrency of 8, a 6.6x gain'")},
                  relative_to=_MUSGRAVE_C1.name),
    _inferencebench_run(1, 13.98, 6.48, {}, fitted={"median_ttft_ms": _V1_FIT}),
    _inferencebench_run(4, 22.75, 6.59, {"median_ttft_ms": _IN_STEP}),
    _inferencebench_run(16, 41.69, 10.94, {"median_ttft_ms": _CLIENT_BOUND, "median_tpot_ms": _CLIENT_BOUND}),
    _inferencebench_run(64, 86.92, 46.91, {"median_ttft_ms": _CLIENT_BOUND, "median_tpot_ms": _CLIENT_BOUND}),
)

# How far apart one benchmark client process gets out requests it takes up together (after
# their clocks started): aiohttp, as vllm bench serve and benchmark_serving use it, measured on
# this machine with bench/client_stagger.py (docs/sim.md). Far below an engine step: what it
# does to a replay turns on 0.1 ms of phase (docs/sim.md), so the table replays without it.
MEASURED_CLIENT_COST_S = 0.00005

# Relative error |model / published - 1| the docs promise and the unit test checks.
TOLERANCE = {metric: 0.15 for metric in METRICS}


def served_by(run: PublishedRun) -> Profile:
    """*run*'s profile as its vLLM release serves it: its generation's API-server cost, its scheduling."""
    return get_profile(run.profile).with_vllm(run.vllm)


def predict(run: PublishedRun, client_cost_s: float = 0.0) -> dict[str, float]:
    """The cost model's figures for *run*'s workload, computed as the benchmark client computes them.

    The client's clock starts when it takes a request up (all at 0 when they are sent at once);
    the request leaves the client process when it has got the earlier ones out
    (*client_cost_s* each), and the engine sees it ``api_server_s`` later (HTTP,
    tokenization, the frontend-engine hop): both are in every TTFT.
    """
    profile = served_by(run)
    result = _replay(run, profile, client_cost_s)
    timelines = [tl for tl, seen in zip(result.timelines, run.measured) if seen]
    ttfts = [tl.token_times[0] - (tl.sent if run.clients else 0.0) for tl in timelines]
    tpots = [tl.tpot for tl in timelines if len(tl.token_times) > 1]
    duration = max(tl.token_times[-1] for tl in result.timelines)  # every client starts sending at 0
    return {"duration_s": duration, "median_ttft_ms": 1000 * statistics.median(ttfts),
            "median_tpot_ms": 1000 * statistics.median(tpots),
            "output_throughput": sum(run.output_lens) / duration}


def _replay(run: PublishedRun, profile: Profile, client_cost_s: float) -> Run:
    limits = Limits(profile.max_num_seqs, profile.max_num_batched_tokens, 16)
    delay = profile.api_server_s
    # distinct ids: neither ShareGPT nor random prompts share a prefix (APC was off in vLLM 0.5/0.6)
    requests = [Arrival(delay + sent, range((1 << 30) + n * 10_000, (1 << 30) + n * 10_000 + prompt), max(out, 1))
                for n, (prompt, out, sent) in enumerate(zip(run.input_lens, run.output_lens,
                                                             serial_sends(len(run.input_lens), client_cost_s)))]
    if run.clients is None:
        return simulate(profile, limits, profile.num_gpu_blocks, requests, enable_caching=False)
    return simulate_closed_loop(profile, limits, profile.num_gpu_blocks, requests, run.clients, delay,
                                enable_caching=False, client_cost_s=client_cost_s)


def comparison() -> list[tuple[PublishedRun, dict[str, float], dict[str, float]]]:
    """(run, model figures, relative errors model / published - 1) for every published run.

    Model figures are for the metrics the run states, as multiples of the ``relative_to``
    run's model figures where the run states multiples.
    """
    by_name = {run.name: run for run in PUBLISHED}
    rows = []
    for run in PUBLISHED:
        full = predict(run)
        base = predict(by_name[run.relative_to]) if run.relative_to else None
        model = {k: full[k] / base[k] if base else full[k] for k in run.figures}
        errors = {k: model[k] / fig.value - 1 for k, fig in run.figures.items()}
        rows.append((run, model, errors))
    return rows


def markdown_table() -> str:
    """The table docs/sim.md shows: published / model (error); a blank where the source states nothing.

    Below it, what each mark means: ``*`` a figure we derived (how), ``†`` a figure the model
    is not held to (why), ``‡`` a figure a model parameter was fitted to (so no check of it).
    """
    rows = comparison()
    lines = ["| Run | workload | " + " | ".join(METRICS.values()) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for run, model, err in rows:
        lines.append(f"| {run.name} | {run.workload} | " + " | ".join(_cell(run, k, model, err) for k in METRICS)
                     + " |")
    notes: dict[str, list[str]] = {}  # note -> the cells it is about, in table order
    for run, _, _ in rows:
        for k, fig in run.figures.items():
            if fig.derived:
                notes.setdefault(f"\\* {fig.derived}", []).append(f"{run.name}, {METRICS[k]}")
        for k, why in run.unclaimed.items():
            notes.setdefault(f"† {why}", []).append(f"{run.name}, {METRICS[k]}")
        for k, what in run.fitted.items():
            notes.setdefault(f"‡ {what}", []).append(f"{run.name}, {METRICS[k]}")
    return "\n".join(lines + [""] + [f"- {note} ({'; '.join(cells)})" for note, cells in notes.items()])


def _cell(run: PublishedRun, metric: str, model: dict[str, float], err: dict[str, float]) -> str:
    if metric not in run.figures:
        return ""
    fig = run.figures[metric]
    times = "×" if run.relative_to else ""  # a multiple of the relative_to run's figure
    mark = ("\\*" if fig.derived else "") + ("†" if metric in run.unclaimed else "")
    mark += "‡" if metric in run.fitted else ""
    return f"{fig.value:.4g}{times}{mark} / {model[metric]:.4g}{times} ({err[metric]:+.0%})"
