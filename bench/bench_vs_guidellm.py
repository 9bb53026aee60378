"""kubellm bench against guidellm: the same simulator, rate, requests and prompts; TTFT, TPOT
and throughput must agree within 5%.

guidellm (PyPI) runs from its own venv, .tools/guidellm (scripts/setup/bench.sh installs it).
Both tools send the same chat requests (same prompts, same max_tokens) at a constant rate to
one simulator process. Constant, not Poisson, arrivals: guidellm 0.8.1's poisson profile was
seen here dispatching all requests at once (60 requests in 0.56 s at rate 10), which would
compare two different loads. TPOT is compared in vLLM's sense, excluding the first token:
guidellm calls that ``inter_token_latency_ms`` (its ``time_per_output_token_ms`` includes
the TTFT). Throughput on both sides: output tokens / (last completion - first send).

Scenarios: ``fixed`` (the simulator's fixed-latency mode: a known answer) and ``cost-model``
(the simulator's default vLLM cost model: latency depends on the load).

    .venv/bin/python bench/bench_vs_guidellm.py [--rate 8] [--requests 80] [--scenario fixed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubellm.bench import driver
from kubellm.bench.client import Target
from kubellm.bench.records import LoadPoint
from kubellm.bench.runner import run_async
from kubellm.bench.stats import summarize
from kubellm.bench.testing import sim_process
from kubellm.bench.workload import Length, RequestSpec, WorkloadConfig, generate

REPO = Path(__file__).resolve().parent.parent
GUIDELLM = REPO / ".tools" / "guidellm" / "bin" / "guidellm"
SCENARIOS = {
    "fixed": ["--fixed-ttft-ms", "80", "--fixed-tpot-ms", "12"],
    "cost-model": ["--profile", "llama-3.1-8b-h100"],
}


@dataclass(frozen=True)
class Figures:
    ttft_mean_ms: float
    ttft_p50_ms: float
    tpot_mean_ms: float
    output_tokens_per_s: float
    completed: int


def workload(requests: int, prompt: int, output: int) -> list[RequestSpec]:
    config = WorkloadConfig(prompt_tokens=Length(low=prompt, high=prompt),
                            output_tokens=Length(low=output, high=output), seed=11)
    return generate(config, requests)


def run_kubellm(url: str, specs: list[RequestSpec], rate: float) -> Figures:
    load = LoadPoint(mode="rate", value=rate, arrivals="constant")
    records = run_async(driver.run(Target(url, "m"), specs, load))
    summary = summarize(records)
    assert summary.ttft is not None and summary.tpot is not None
    return Figures(summary.ttft.mean * 1000, summary.ttft.p50 * 1000, summary.tpot.mean * 1000,
                   summary.output_tokens_per_s, summary.completed)


def run_guidellm(url: str, specs: list[RequestSpec], rate: float, workdir: Path) -> Figures:
    data, out = workdir / "data.jsonl", workdir / "guidellm.json"
    data.write_text("".join(json.dumps({"prompt": s.messages[-1]["content"],
                                        "output_tokens_count": s.max_tokens}) + "\n" for s in specs))
    command = [
        str(GUIDELLM), "run",
        "--backend", f"kind=openai_http,target={url},model=m,request_format=/v1/chat/completions",
        "--profile", f"kind=constant,rate={rate}",
        "--constraint", f"kind=max_requests,count={len(specs)}",
        "--data", f"kind=json_file,path={data}",
        "--output", f"kind=json,path={out}",
        "--disable-console",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600, cwd=workdir)
    return guidellm_figures(json.loads(out.read_text()))


def guidellm_figures(report: dict[str, Any]) -> Figures:
    (benchmark,) = report["benchmarks"]
    done = benchmark["requests"]["successful"]
    ttft = [r["time_to_first_token_ms"] for r in done]
    tokens = sum(r["output_tokens"] for r in done)
    span = max(r["request_end_time"] for r in done) - min(r["request_start_time"] for r in done)
    return Figures(statistics.fmean(ttft), statistics.median(ttft),
                   statistics.fmean(r["inter_token_latency_ms"] for r in done), tokens / span, len(done))


def compare(scenario: str, rate: float, requests: int, prompt: int, output: int) -> dict[str, tuple[float, float, float]]:
    """{figure: (kubellm, guidellm, relative difference)}, both tools against one simulator."""
    specs = workload(requests, prompt, output)
    with sim_process(["--model", "m", *SCENARIOS[scenario]]) as url, tempfile.TemporaryDirectory() as tmp:
        ours = run_kubellm(url, specs, rate)
        theirs = run_guidellm(url, specs, rate, Path(tmp))
    if ours.completed != requests or theirs.completed != requests:
        raise RuntimeError(f"not every request completed: kubellm {ours.completed}, guidellm {theirs.completed}")
    rows = {}
    for name in ("ttft_mean_ms", "ttft_p50_ms", "tpot_mean_ms", "output_tokens_per_s"):
        a, b = getattr(ours, name), getattr(theirs, name)
        rows[name] = (a, b, a / b - 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--requests", type=int, default=80)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    args = parser.parse_args()
    if not GUIDELLM.exists():
        raise SystemExit(f"{GUIDELLM} is missing: run scripts/setup/bench.sh")
    worst = 0.0
    for scenario in args.scenario or ["fixed", "cost-model"]:
        rows = compare(scenario, args.rate, args.requests, args.prompt_tokens, args.output_tokens)
        print(f"\n{scenario}: {args.requests} requests at {args.rate:g} req/s (constant), "
              f"{args.prompt_tokens} prompt words, {args.output_tokens} output tokens")
        print(f"{'figure':>22} {'kubellm':>10} {'guidellm':>10} {'diff':>8}")
        for name, (ours, theirs, diff) in rows.items():
            print(f"{name:>22} {ours:10.2f} {theirs:10.2f} {100 * diff:+7.2f}%")
            worst = max(worst, abs(diff))
    print(f"\nlargest difference: {100 * worst:.2f}% ({'within' if worst <= 0.05 else 'OUTSIDE'} the 5% target)")


if __name__ == "__main__":
    main()
