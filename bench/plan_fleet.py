"""Benchmark `kubellm plan`'s fleet simulation and compare the field's policies on the built-in traces.

    nice .venv/bin/python bench/plan_fleet.py [--out docs/plan] [--traces diurnal,flash-crowd,idle-tail]

Prints, per trace, one table row per policy (SLO attainment, latency, GPU-hours, cost) and
the wall time of every simulation with its simulated/wall ratio; with matplotlib, writes
replicas-vs-load and TTFT-over-time plots (PNG) to --out. Single process, one core.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from kubellm.plan import params as PR
from kubellm.plan.fleet import FleetRun, simulate
from kubellm.plan.provision import Provisioning
from kubellm.plan.report import Summary, summarize, table
from kubellm.plan.search import PEERS, Setup, make_plan
from kubellm.plan.tracefile import TraceRequest
from kubellm.plan.workloads import BUILTIN, diurnal, generate
from kubellm.sim.profiles import get_profile
from kubellm.spec.slo import Slo

PROFILE = "llama-3.1-70b-h100-tp4"
SLO = Slo(ttft_p99_ms=2000, tpot_ms=100)
MAX_REPLICAS = 40


def run_peer(policy: str, trace: list[TraceRequest], prov: Provisioning) -> tuple[Summary, FleetRun, float]:
    base = {"minReplicas": 0 if policy == "kubeai" else 1, "maxReplicas": MAX_REPLICAS}
    t0 = time.process_time()
    run = simulate(trace, get_profile(PROFILE), PR.make(policy, PR.build(policy, base)), prov)
    return summarize(policy, run, SLO), run, time.process_time() - t0


def run_kubellm(trace: list[TraceRequest], prov: Provisioning) -> tuple[Summary, FleetRun, float, int]:
    """kubellm's policy as `kubellm plan` tunes it for this trace (the search's best)."""
    setup = Setup(trace, get_profile(PROFILE), SLO, prov, 1, MAX_REPLICAS)
    t0 = time.process_time()
    plan = make_plan(setup, peers=False)
    per_run = (time.process_time() - t0) / len(plan.candidates)
    return plan.best.summary, plan.best.run, per_run, len(plan.candidates)


def plot(trace_name: str, runs: dict[str, FleetRun], out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plots")
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    any_run = next(iter(runs.values()))
    minutes = math.ceil(any_run.end / 60) + 1
    load = [0] * minutes
    for r in any_run.trace:
        load[int(r.at // 60)] += 1
    ax1b = ax1.twinx()
    ax1b.fill_between([m / 60 for m in range(minutes)], [x / 60 for x in load], color="0.85", label="load")
    ax1b.set_ylabel("arrivals / s")
    for name, run in runs.items():
        ax1.plot([s.t / 3600 for s in run.samples], [s.replicas for s in run.samples], label=name)
        ttft = [math.nan] * minutes
        buckets: dict[int, list[float]] = {}
        for r, f in zip(run.trace, run.results.first):
            buckets.setdefault(int(r.at // 60), []).append(f - r.at)
        for m, vals in buckets.items():
            vals.sort()
            ttft[m] = vals[min(len(vals) - 1, int(0.99 * len(vals)))]
        ax2.plot([m / 60 for m in range(minutes)], ttft, label=name, marker=".", markersize=3)  # lone minutes show too
    ax1.set_zorder(ax1b.get_zorder() + 1)
    ax1.patch.set_visible(False)
    ax1.set_ylabel("replicas")
    ax1.legend(loc="upper left")
    ax2.set_yscale("log")
    ax2.axhline(SLO.ttft_p99_ms / 1000, color="k", linestyle=":", label="SLO")
    ax2.set_ylabel("TTFT p99 per minute (s)")
    ax2.set_xlabel("hours")
    ax1.set_title(f"{trace_name}: replicas against load, and TTFT ({PROFILE})")
    fig.tight_layout()
    fig.savefig(out / f"plan-{trace_name}.png", dpi=80)
    plt.close(fig)


def report(trace: str, policy: str, n: int, duration: float, cpu: float, s: Summary) -> None:
    print(f"{trace} {policy}: {n} requests, {duration / 3600:.0f} h simulated in {cpu:.1f} s CPU "
          f"(ratio {duration / cpu:,.0f}x), peak {s.peak_replicas} replicas", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--traces", default=",".join(BUILTIN))
    ap.add_argument("--diurnal-peak", type=float, default=12.0, help="the diurnal trace's peak, req/s")
    ap.add_argument("--only", choices=("peers", "kubellm"), default=None, help="run only these policies")
    ap.add_argument("--node-idle-seconds", type=float, default=Provisioning().node_idle_s,
                    help="how long a freed node is kept before removal (cluster autoscaler's scale-down-unneeded-time)")
    args = ap.parse_args()
    prov = Provisioning(node_idle_s=args.node_idle_seconds)
    for name in args.traces.split(","):
        workload = BUILTIN[name]() if name != "diurnal" else diurnal(peak=args.diurnal_peak)
        trace = generate(workload, max_len=get_profile(PROFILE).max_model_len)
        rows, runs = [], {}
        for policy in PEERS if args.only != "kubellm" else ():
            summary, run, wall = run_peer(policy, trace, prov)
            rows.append(summary)
            runs[policy] = run
            report(name, policy, len(trace), workload.duration, wall, summary)
        if args.only != "peers":
            summary, run, wall, n = run_kubellm(trace, prov)
            rows.append(summary)
            runs["kubellm"] = run
            report(name, f"kubellm (best of {n} searched)", len(trace), workload.duration, wall, summary)
        print(f"\n### {name}\n\n{table(rows)}\n", flush=True)
        if args.out and args.only is None:
            args.out.mkdir(parents=True, exist_ok=True)
            plot(name, runs, args.out)


if __name__ == "__main__":
    main()
