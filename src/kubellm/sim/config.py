"""Configuration of one simulated engine (pydantic, ``extra="forbid"``).

``SimConfig`` is what the CLI flags and the in-process API build; every engine of a
fleet gets the same config (each with its own state, registry and port).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubellm.kvhash import HashAlgo

KvRole = Literal["both", "prefill", "decode"]
KvEventsFormat = Literal["map", "array"]


class FaultConfig(BaseModel):
    """Faults injected on purpose, for tests of the clients of an engine.

    Rates are per request and drawn from a generator seeded by ``seed`` (per engine),
    so a test run is reproducible.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered with an error")
    error_status: int = Field(503, ge=400, le=599, description="HTTP status of injected errors")
    spike_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests delayed by spike_ms")
    spike_ms: float = Field(0.0, ge=0.0, description="extra latency of a spiked request, before it is queued")
    startup_delay_s: float = Field(0.0, ge=0.0, description="model load time: /health is 503 until it passes")
    die_mid_stream_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of streams cut without [DONE]")
    die_after_tokens: int = Field(1, ge=0, description="tokens sent before a dying stream is cut")
    hang_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests never answered")
    crash_after_requests: int | None = Field(None, ge=0, description="engine stops serving after N requests")
    seed: int = 0


class SimConfig(BaseModel):
    """One simulated vLLM engine.

    Engine limits left as ``None`` come from the named profile
    (:mod:`kubellm.sim.profiles`). ``fixed_ttft_ms``/``fixed_tpot_ms`` switch the cost
    model off: every request then sees exactly that TTFT and TPOT whatever the load.
    ``time_scale`` > 1 runs the cost model's clock faster than the wall clock (tests).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("sim-model", min_length=1, description="served model name")
    profile: str = "llama-3.1-8b-h100"
    max_model_len: int | None = Field(None, ge=16)
    max_num_seqs: int | None = Field(None, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    num_gpu_blocks: int | None = Field(None, ge=1, description="KV cache size in blocks (profile's if unset)")
    block_size: int = Field(16, ge=1)
    enable_prefix_caching: bool = True
    async_scheduling: bool = Field(True, description="vLLM's async scheduling (its default since 0.14): a request "
                                                     "arriving while a step runs waits for the step after next")
    fixed_ttft_ms: float | None = Field(None, ge=0.0)
    fixed_tpot_ms: float | None = Field(None, ge=0.0)
    time_scale: float = Field(1.0, gt=0.0, description="model seconds per wall second")
    default_max_tokens: int = Field(256, ge=1, description="cap on the EOS-drawn length when max_tokens is unset")
    kv_role: KvRole = "both"
    kv_transfer_gbps: float = Field(25.0, gt=0.0, description="KV transfer bandwidth between P and D, GB/s")
    kv_events_port: int | None = Field(None, ge=0, le=65535, description="ZMQ PUB port (0: any free port)")
    kv_events_replay_port: int | None = Field(0, ge=0, le=65535,
                                              description="ZMQ ROUTER replay port (0: any free port, None: off)")
    kv_events_topic: str = ""
    kv_events_format: KvEventsFormat = Field(
        "map", description="map: vLLM >= 0.26 (tagged-map events, topic in replays); array: older vLLM (0.9 on)")
    prefix_caching_hash_algo: HashAlgo = Field(
        "sha256", description="vLLM's --prefix-caching-hash-algo: how KV blocks are named (kubellm.kvhash)")
    hash_seed: str | None = Field(
        None, description="the engine's PYTHONHASHSEED (None: unset, as vLLM: a fixed seed for sha256 "
                          "algorithms, a random one per engine for xxhash ones)")
    max_loras: int = Field(4, ge=1)
    lora_modules: tuple[str, ...] = ()
    faults: FaultConfig = FaultConfig()

    @model_validator(mode="after")
    def _fixed_pair(self) -> "SimConfig":
        if (self.fixed_ttft_ms is None) != (self.fixed_tpot_ms is None):
            raise ValueError("set both fixed_ttft_ms and fixed_tpot_ms (fixed-latency mode) or neither")
        return self

    @property
    def fixed_latency(self) -> bool:
        return self.fixed_ttft_ms is not None
