"""Commands of kubellm.sim, registered on the main `kubellm` app."""

from __future__ import annotations

import os

import typer
from pydantic import ValidationError

from kubellm.kvhash import KvHashError, parse_algo
from kubellm.sim.config import FaultConfig, KvEventsFormat, KvRole, SimConfig
from kubellm.sim.errors import SimConfigError


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("sim", help="Serve simulated vLLM engines (OpenAI API + vLLM metrics), no GPU needed.")(sim)


def sim(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port of the first engine (0: free ports)"),
    replicas: int = typer.Option(1, min=1, help="engines on consecutive ports, one process"),
    model: str = typer.Option("sim-model", "--model", "--served-model-name", help="served model name"),
    profile: str = typer.Option("llama-3.1-8b-h100", help="cost-model profile (see docs/sim.md)"),
    max_model_len: int | None = typer.Option(None, help="context length (profile's if unset)"),
    max_num_seqs: int | None = typer.Option(None, help="max running sequences"),
    max_num_batched_tokens: int | None = typer.Option(None, help="token budget per step"),
    num_gpu_blocks: int | None = typer.Option(None, "--num-gpu-blocks", "--num-gpu-blocks-override",
                                              help="KV cache size in blocks"),
    block_size: int = typer.Option(16, help="tokens per KV block"),
    no_prefix_caching: bool = typer.Option(False, "--no-prefix-caching", "--no-enable-prefix-caching",
                                           help="disable automatic prefix caching"),
    async_scheduling: bool = typer.Option(True, "--async-scheduling/--no-async-scheduling",
                                          help="plan step n+1 while step n runs, as vLLM >= 0.14 does by default"),
    default_max_tokens: int = typer.Option(256, help="cap of the EOS-drawn length when max_tokens is unset"),
    fixed_ttft_ms: float | None = typer.Option(None, help="fixed TTFT (with --fixed-tpot-ms)"),
    fixed_tpot_ms: float | None = typer.Option(None, help="fixed TPOT (with --fixed-ttft-ms)"),
    time_scale: float = typer.Option(1.0, help="model seconds per wall second"),
    kv_role: str = typer.Option("both", help="both | prefill | decode (P/D disaggregation)"),
    kv_transfer_gbps: float = typer.Option(25.0, help="P->D KV transfer bandwidth, GB/s"),
    kv_events_port: int | None = typer.Option(None, help="publish KV events on ZMQ PUB at this port (+i per engine)"),
    kv_events_config: str | None = typer.Option(None, help="vLLM's JSON form (endpoint, replay_endpoint, topic)"),
    kv_events_format: str = typer.Option("map", help="map (vLLM >= 0.26) | array (encoding of older vLLM, 0.9 on)"),
    prefix_caching_hash_algo: str = typer.Option(
        "sha256", help="block hash: sha256 | sha256_cbor | xxhash | xxhash_cbor (seeded by PYTHONHASHSEED)"),
    lora_modules: list[str] = typer.Option([], "--lora-modules", help="LoRA adapters served from the start"),
    error_rate: float = typer.Option(0.0, help="share of requests failed on purpose"),
    error_status: int = typer.Option(503, help="status of injected errors"),
    spike_rate: float = typer.Option(0.0, help="share of requests given a latency spike"),
    spike_ms: float = typer.Option(0.0, help="latency spike, ms"),
    startup_delay: float = typer.Option(0.0, help="seconds before /health turns 200"),
    die_mid_stream_rate: float = typer.Option(0.0, help="share of streams cut before [DONE]"),
    die_after_tokens: int = typer.Option(1, help="tokens sent before a cut stream dies"),
    hang_rate: float = typer.Option(0.0, help="share of requests never answered"),
    crash_after: int | None = typer.Option(None, help="crash after this many requests"),
    seed: int = typer.Option(0, help="seed of fault injection"),
    drain_seconds: float = typer.Option(0.0, min=0.0, help="after SIGTERM, serve this long with /health 503 and "
                                        "connections closed after each response, then stop"),
) -> None:
    from kubellm.sim.serve import run

    try:
        faults = FaultConfig(error_rate=error_rate, error_status=error_status, spike_rate=spike_rate,
                             spike_ms=spike_ms, startup_delay_s=startup_delay,
                             die_mid_stream_rate=die_mid_stream_rate, die_after_tokens=die_after_tokens,
                             hang_rate=hang_rate, crash_after_requests=crash_after, seed=seed)
        events = _kv_events(kv_events_port, kv_events_config)
        config = SimConfig(model=model, profile=profile, max_model_len=max_model_len,
                           max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                           num_gpu_blocks=num_gpu_blocks, block_size=block_size,
                           enable_prefix_caching=not no_prefix_caching, async_scheduling=async_scheduling,
                           default_max_tokens=default_max_tokens,
                           fixed_ttft_ms=fixed_ttft_ms, fixed_tpot_ms=fixed_tpot_ms, time_scale=time_scale,
                           kv_role=_kv_role(kv_role), kv_transfer_gbps=kv_transfer_gbps,
                           kv_events_port=events[0], kv_events_replay_port=events[1], kv_events_topic=events[2],
                           kv_events_format=_kv_events_format(kv_events_format),
                           prefix_caching_hash_algo=parse_algo(prefix_caching_hash_algo),
                           hash_seed=os.environ.get("PYTHONHASHSEED"),  # read once, here, as vLLM reads it
                           lora_modules=tuple(lora_modules), faults=faults)
        code = run(config, replicas, host, port, _announce, drain_seconds)
    except ValidationError as exc:
        typer.echo(f"error: invalid simulator option: {_option_errors(exc)}", err=True)
        raise typer.Exit(2) from None
    except (SimConfigError, KvHashError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


# Config fields whose command-line option has another name.
_OPTION_OF = {"startup_delay_s": "startup-delay", "crash_after_requests": "crash-after",
              "enable_prefix_caching": "no-prefix-caching", "kv_events_replay_port": "kv-events-config"}


def _option_errors(exc: ValidationError) -> str:
    """pydantic's errors as ``--option: message``, one line: users typed options, not fields."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][-1]) if error["loc"] else ""
        option = _OPTION_OF.get(field, field.replace("_", "-"))
        parts.append(f"--{option}: {error['msg']}" if option else str(error["msg"]))
    return "; ".join(parts)


def _kv_events(port: int | None, vllm_json: str | None) -> tuple[int | None, int | None, str]:
    """PUB port, replay port (0: a free one) and topic, from --kv-events-port or vLLM's JSON."""
    if vllm_json is None:
        return port, 0, ""
    if port is not None:
        raise SimConfigError("give --kv-events-port or --kv-events-config, not both")
    from kubellm.sim.kvevents import parse_vllm_config

    return parse_vllm_config(vllm_json)


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        options = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise SimConfigError(f"{flag} must be {options}, not {value!r}")
    return value


def _kv_events_format(value: str) -> KvEventsFormat:
    return _choice("--kv-events-format", value, ("map", "array"))  # type: ignore[return-value]


def _kv_role(value: str) -> KvRole:
    return _choice("--kv-role", value, ("both", "prefill", "decode"))  # type: ignore[return-value]


def _announce(urls: list[str]) -> None:
    for url in urls:
        typer.echo(f"serving {url}", err=True)
    typer.echo(f"ready: {len(urls)} engine(s)", err=True)
