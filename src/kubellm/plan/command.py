"""`kubellm plan` end to end: read the spec and trace, run the plan, format the answer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kubellm.plan import params as PR
from kubellm.plan.costadvice import SPOT_PROVIDERS, CostAdvice, ServiceFacts, advise
from kubellm.plan.errors import PlanConfigError
from kubellm.plan.provision import Provisioning
from kubellm.plan.report import table
from kubellm.plan.search import Plan, Setup, make_plan, scaling_block
from kubellm.plan.tracefile import TraceRequest, load_trace
from kubellm.plan.workloads import BUILTIN, generate
from kubellm.sim.profiles import Profile, get_profile
from kubellm.spec.load import load_spec, parse_spec
from kubellm.spec.service import LLMService
from kubellm.spec.slo import Slo


def profile_for(service: LLMService, name: str | None) -> Profile:
    """The named profile, else the one matching the spec's accelerator."""
    if name is not None:
        return get_profile(name)
    acc = service.spec.resources.accelerator
    kind = (acc.type or "").lower()
    if "h100" in kind:
        return get_profile("llama-3.1-70b-h100-tp4" if acc.count >= 4 else "llama-3.1-8b-h100")
    if "l4" in kind:
        return get_profile("qwen2.5-7b-l4")
    if "a100" in kind and "80" not in kind:  # GKE's nvidia-tesla-a100 is the 40 GB part
        return get_profile("llama-3.1-8b-a100-40gb")
    raise PlanConfigError(f"spec.resources.accelerator.type {acc.type!r} has no sim profile; "
                          "pass --profile (see `kubellm sim --help` and docs/sim.md)")


def read_trace(trace: str, max_len: int) -> list[TraceRequest]:
    if trace in BUILTIN:
        return generate(BUILTIN[trace](), max_len=max_len)
    return load_trace(trace)


def slo_with(base: Slo, items: Sequence[str]) -> Slo:
    values: dict[str, Any] = base.model_dump(by_alias=True)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in values:
            raise PlanConfigError(f"--slo {item!r}: write FIELD=VALUE with FIELD one of {', '.join(values)}")
        values[key] = value
    try:
        return Slo.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PlanConfigError(f"slo.{err['loc'][0]}: {err['msg']}") from None


def run_plan(spec_path: Path, trace: str, slo_items: Sequence[str], profile: str | None, cache: str,
             max_replicas: int | None, sets: Sequence[str], peers: bool,
             spot: str | None = None) -> tuple[str, dict[str, Any] | None]:
    if spot is not None and spot not in SPOT_PROVIDERS:
        raise PlanConfigError(f"--spot {spot!r}: one of {', '.join(SPOT_PROVIDERS)}")
    service = load_spec(spec_path)
    prof = profile_for(service, profile)
    overrides = PR.parse_sets(sets)
    try:
        prov = Provisioning.model_validate({"cache": cache})
    except ValidationError:
        raise PlanConfigError(f"--cache {cache!r}: one of pvc, oci, pull") from None
    scaling = service.spec.scaling
    setup = Setup(read_trace(trace, prof.max_model_len), prof, slo_with(service.spec.slo, slo_items), prov,
                  min_replicas=scaling.min_replicas, max_replicas=max_replicas or max(scaling.effective_max, 2))
    result = make_plan(setup, overrides, peers)
    spec_out, advice = None, None
    if result.meets:
        block = scaling_block(result.best)
        facts = ServiceFacts(min_replicas=block["minReplicas"],
                             disruption_budget=service.spec.security.pod_disruption_budget,
                             own_priority_class=service.spec.resources.priority_class_name is not None)
        advice = advise(result.best.summary, setup.trace[-1].at, facts, spot, setup.prices)
        data = service.to_dict()
        data["spec"]["scaling"] = {**data["spec"].get("scaling", {}), **block}
        data["spec"]["cost"] = {**data["spec"].get("cost", {}), **advice.block}
        parse_spec(data)  # what we write must load
        spec_out = data
    return format_plan(result, setup, advice), spec_out


def format_plan(result: Plan, setup: Setup, advice: CostAdvice | None = None) -> str:
    slo = setup.slo
    rows = [*result.peers, *(c.summary for c in result.candidates)]
    best = result.best
    goal = f"TTFT <= {slo.ttft_p99_ms:g} ms and TPOT <= {slo.tpot_ms:g} ms for >= {setup.goal:.0%} of requests"
    lines = [f"{len(setup.trace)} requests over {setup.trace[-1].at / 3600:.1f} h on {setup.profile.name} "
             f"({setup.profile.tensor_parallel} accelerator(s) per replica); goal: {goal}", "", table(rows), ""]
    if result.meets:
        lines.append(f"recommended: {best.summary.policy}: {best.summary.gpu_hours:.1f} GPU-hours, "
                     f"peak {best.summary.peak_replicas} replicas "
                     f"({best.summary.peak_replicas * setup.profile.tensor_parallel} accelerators), "
                     f"{best.summary.attainment:.2%} within the SLO")
        if result.without_zero is not None and best.params.scale_to_zero:
            saved = result.without_zero.summary.gpu_hours - best.summary.gpu_hours
            lines.append(f"scale to zero saves {saved:.1f} GPU-hours against the best setting without it")
        lines.append(f"scaling: {scaling_block(best)}")
        lines += advice.lines if advice else []
    else:
        lines.append(f"no setting meets the SLO within maxReplicas {setup.max_replicas}; closest: "
                     f"{best.summary.policy} at {best.summary.attainment:.2%} "
                     f"({setup.goal - best.summary.attainment:.2%} short); raise maxReplicas, relax the SLO "
                     "or choose a faster accelerator")
    return "\n".join(lines)
