"""Engine command lines: one function per engine kind, from the spec and a serving unit."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from kubellm.render.context import RenderContext
from kubellm.render.kvevents import kv_event_args, kv_event_env
from kubellm.render.sources import Source
from kubellm.render.units import Unit
from kubellm.spec.checks import gguf_file
from kubellm.spec.uri import parse_model_uri

LISTEN_HOST = "0.0.0.0"  # inside the pod; the NetworkPolicy limits who can connect


@dataclass(frozen=True)
class Command:
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def _opt(flag: str, value: object) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _switch(flag: str, on: bool) -> list[str]:
    return [f"--{flag}" if on else f"--no-{flag}"]


def served_name(ctx: RenderContext, unit: Unit) -> str:
    canary = ctx.service.spec.rollout.canary
    if unit.component == "canary" and canary is not None and canary.served_name:
        return canary.served_name
    return ctx.service.spec.model.served_name


def _common_env(ctx: RenderContext) -> list[tuple[str, str]]:
    env = [("HOME", "/tmp/home"), ("XDG_CACHE_HOME", "/tmp/cache")]
    if ctx.service.spec.observability.otel_endpoint:
        env += [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ctx.service.spec.observability.otel_endpoint),
            ("OTEL_SERVICE_NAME", ctx.name),
        ]
    return env


def vllm_args(ctx: RenderContext, unit: Unit, model: Source, loras: list[Source]) -> list[str]:
    engine, t = ctx.service.spec.engine, unit.tuning
    args = [model.path, "--served-model-name", served_name(ctx, unit), "--host", LISTEN_HOST]
    args += ["--port", str(engine.port), "--dtype", engine.dtype]
    args += _opt("--quantization", engine.quantization) + _opt("--max-model-len", engine.max_model_len)
    args += _opt("--max-num-seqs", t.max_num_seqs) + _opt("--max-num-batched-tokens", t.max_num_batched_tokens)
    args += _opt("--gpu-memory-utilization", t.gpu_memory_utilization)
    args += ["--tensor-parallel-size", str(t.tensor_parallel_size)]
    args += ["--pipeline-parallel-size", str(t.pipeline_parallel_size)]
    args += _switch("enable-prefix-caching", engine.enable_prefix_caching)
    args += _switch("enable-chunked-prefill", engine.enable_chunked_prefill)
    if loras:
        args += ["--enable-lora", "--lora-modules"]
        args += [f"{a.name}={s.path}" for a, s in zip(engine.lora_adapters, loras, strict=True)]
    args += _opt("--otlp-traces-endpoint", ctx.service.spec.observability.otel_endpoint)
    if unit.kv_role is not None:
        args += ["--kv-transfer-config", _kv_transfer_config(ctx, unit.kv_role)]
    args += kv_event_args(ctx.service)
    return args + list(t.extra_args)


def _kv_transfer_config(ctx: RenderContext, role: str) -> str:
    connector = ctx.service.spec.serving.kv_transfer.connector
    # NIXL pulls KV blocks either way, so both roles are kv_both; the others push one way.
    kv_role = "kv_both" if connector == "NixlConnector" else ("kv_producer" if role == "prefill" else "kv_consumer")
    return json.dumps({"kv_connector": connector, "kv_role": kv_role}, sort_keys=True, separators=(",", ":"))


def vllm_command(ctx: RenderContext, unit: Unit, model: Source, loras: list[Source]) -> Command:
    env = _common_env(ctx) + [
        ("HF_HOME", "/tmp/hf-home"),
        ("HF_HUB_OFFLINE", "1"),
        ("VLLM_NO_USAGE_STATS", "1"),
        ("DO_NOT_TRACK", "1"),
    ] + kv_event_env(ctx.service)
    return Command(("vllm", "serve"), tuple(vllm_args(ctx, unit, model, loras)), tuple(env))


def unit_gguf_file(ctx: RenderContext, unit: Unit) -> str | None:
    """The .gguf file the unit's llama.cpp loads, from the unit's own model URI.

    The main model's file comes from its URI or allowPatterns (``gguf_file``). Another URI
    (the gatewayCanary's) is pulled without those patterns, so its file is its URI's last
    segment; only a canary URI that names no .gguf file falls back to the main model's name.
    """
    spec = ctx.service.spec
    if unit.model_uri == spec.model.uri:
        return gguf_file(spec)
    last = parse_model_uri(unit.model_uri).last_segment
    return last if last.lower().endswith(".gguf") else gguf_file(spec)


def llamacpp_command(ctx: RenderContext, unit: Unit, model: Source) -> Command:
    spec = ctx.service.spec
    engine, t = spec.engine, unit.tuning
    model_file = unit_gguf_file(ctx, unit)
    path = model.path if model.path.endswith(str(model_file)) else f"{model.path}/{model_file}"
    args = ["--model", path, "--alias", served_name(ctx, unit), "--host", LISTEN_HOST]
    args += ["--port", str(engine.port), "--metrics"]
    args += _opt("--ctx-size", engine.max_model_len) + _opt("--parallel", t.max_num_seqs)
    args += _opt("--threads", engine.llamacpp.threads) + ["--n-gpu-layers", str(engine.llamacpp.n_gpu_layers)]
    return Command(("/app/llama-server",), tuple(args + list(t.extra_args)), tuple(_common_env(ctx)))


SIM_DRAIN_SECONDS = 5
"""Well under the engines' termination grace period (60 s)."""


def sim_command(ctx: RenderContext, unit: Unit) -> Command:
    spec = ctx.service.spec
    engine, t = spec.engine, unit.tuning
    args = ["--host", LISTEN_HOST, "--port", str(engine.port), "--model", served_name(ctx, unit)]
    args += ["--profile", engine.sim.profile]
    args += _opt("--fixed-ttft-ms", engine.sim.fixed_ttft_ms) + _opt("--fixed-tpot-ms", engine.sim.fixed_tpot_ms)
    args += _opt("--max-model-len", engine.max_model_len) + _opt("--max-num-seqs", t.max_num_seqs)
    args += _opt("--max-num-batched-tokens", t.max_num_batched_tokens)
    args += [] if engine.enable_prefix_caching else ["--no-prefix-caching"]
    args += _opt("--kv-role", unit.kv_role) + kv_event_args(ctx.service)
    # A terminating pod stays in the Service's rules for a moment (kube-proxy, load balancers):
    # the simulator serves through it, closing each connection so that clients reconnect
    # elsewhere. Without it, a rolling update failed requests (tests/integration/realnode).
    args += ["--drain-seconds", str(SIM_DRAIN_SECONDS)]
    return Command(("kubellm", "sim"), tuple(args + list(t.extra_args)), tuple(_common_env(ctx) + kv_event_env(ctx.service)))


def engine_command(ctx: RenderContext, unit: Unit, model: Source, loras: list[Source]) -> Command:
    kind = ctx.service.spec.engine.kind
    if kind == "vllm":
        return vllm_command(ctx, unit, model, loras)
    if kind == "llamacpp":
        return llamacpp_command(ctx, unit, model)
    return sim_command(ctx, unit)


def ray_leader_command(ctx: RenderContext, unit: Unit, model: Source, loras: list[Source]) -> Command:
    """Start the Ray head, then vLLM on it (the LeaderWorkerSet leader)."""
    port = ctx.service.spec.serving.group.ray_port
    vllm = vllm_command(ctx, unit, model, loras)
    serve = shlex.join([*vllm.command, *vllm.args, "--distributed-executor-backend", "ray"])
    script = f"ray start --head --port={port} --disable-usage-stats && exec {serve}"
    return Command(("sh", "-c"), (script,), vllm.env)


def ray_worker_command(ctx: RenderContext) -> Command:
    """Join the group's Ray head (LWS_LEADER_ADDRESS is set by LeaderWorkerSet)."""
    port = ctx.service.spec.serving.group.ray_port
    script = f"exec ray start --address=${{LWS_LEADER_ADDRESS}}:{port} --block --disable-usage-stats"
    return Command(("sh", "-c"), (script,), tuple(_common_env(ctx)))
