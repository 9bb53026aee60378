"""`kubellm doctor`: approximate prefix routing split over several gateway processes.

The ``prefix-affinity`` scorer remembers which engine each prompt's blocks were sent to, in
the process that routed it. A gateway of several replicas (the rendered default is 2) or
``--workers`` above 1 has that many separate memories: each process knows only the share of
the traffic it routed itself, sends the rest of a hot prefix wherever its load scorers point,
and the engines' prefix-cache hit ratio drops (measured on the shared-context workload,
docs/gateway.md: 1.9-13.1 points fewer hits with one gateway of 2 workers, 12-18 with two
gateways, against one process). Precise prefix
routing (``spec.routing.precisePrefix``) has every process read the engines' own KV events,
so they all see the same caches. This check warns where a model routes approximately across
more than one process. Pure: the facts come from ``gatewaydoctor.gather_gateway``.
"""

from __future__ import annotations

from typing import Any, Literal

from kubellm.gateway.config import RoutingProfile, parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.operator.kvhashdoctor import flag

Body = dict[str, Any]
Check = tuple[str, Literal["ok", "warn", "fail"], str]
CHECK = "gateway-prefix-processes"
# scorers that read the gateway's own prefix index when the engines' KV events are not read
# (the latency-predicting ones take each endpoint's uncached tokens from it)
APPROXIMATE = frozenset({"prefix-affinity", "predicted-latency", "slo-latency"})


def gateway_processes(deployment: Body, autoscaler: Body | None = None) -> tuple[int, int]:
    """(replicas, workers per pod) of the gateway: the Deployment's ``spec.replicas`` (absent:
    the API server's default, 1) or its autoscaler's ``minReplicas`` if higher (the rendered
    Deployment leaves replicas to the HPA), and the container's ``--workers`` (absent: 1)."""
    spec = deployment.get("spec") or {}
    replicas = max(int(spec.get("replicas") or 1), int(((autoscaler or {}).get("spec") or {}).get("minReplicas") or 1))
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    workers = flag([str(a) for a in containers[0].get("args") or []], "--workers")
    return replicas, int(workers) if workers and workers.isdigit() else 1


def _approximate(profile: RoutingProfile) -> bool:
    return any(s.type in APPROXIMATE and s.weight > 0 for s in profile.scorers)


def approximate_models(config: Body) -> list[str]:
    """Models of a gateway config whose routing profile (or a disaggregated pool's) weighs the
    gateway's own prefix estimate and that do not read the engines' KV events."""
    try:
        parsed = parse_config(config)
    except ConfigError:
        return []  # an invalid config is the gateway's own error, not this check's
    profiles = parsed.all_profiles()
    found = []
    for model in parsed.models:
        used = [model.profile] + ([model.disaggregation.prefill_profile, model.disaggregation.decode_profile]
                                  if model.disaggregation else [])
        if model.precise_tokenizer is None and any(_approximate(profiles[p]) for p in used):
            found.append(model.name)
    return found


def prefix_process_checks(config: Body | None, deployment: Body | None, autoscaler: Body | None = None) -> list[Check]:
    if config is None or deployment is None:
        return []
    models = approximate_models(config)
    if not models:
        return []
    replicas, workers = gateway_processes(deployment, autoscaler)
    processes = replicas * workers
    names = ", ".join(models)
    if processes <= 1:
        return [(CHECK, "ok", f"one gateway process routes {names} on its own prefix estimate")]
    return [(CHECK, "warn", f"{names} route(s) on approximate prefix affinity across {processes} gateway processes "
                            f"({replicas} replica(s) x {workers} worker(s)): each knows only the requests it routed "
                            "itself, so hot prefixes spread and prefix-cache hits drop (docs/gateway.md, 'Precise "
                            "routing in the shipped shape'); set spec.routing.precisePrefix so every process reads the "
                            "engines' KV events (vllm and sim engines), or run one gateway process")]
