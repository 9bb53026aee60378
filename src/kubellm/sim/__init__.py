"""kubellm.sim: a vLLM-compatible engine simulator (OpenAI API, vLLM metrics, KV events).

Stable in-process API, for tests of other components::

    from kubellm.sim import SimConfig, FaultConfig, run_fleet, run_engine

    # N engines on free ports of 127.0.0.1, in the running event loop
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=50, fixed_tpot_ms=10), replicas=4) as urls:
        urls[0]            # "http://127.0.0.1:PORT" (urls is a Sequence[str])
        urls.servers[0]    # the EngineServer: .url, .port, .engine.stats, await .crash()

    # one engine; port=0 picks a free port
    async with run_engine(SimConfig(profile="tiny"), port=0) as server:
        server.url

    fleet = await start_fleet(config, replicas=2)  # the same without a context manager
    await stop_fleet(fleet.servers)

``SimConfig`` (pydantic, ``extra="forbid"``): ``model`` (served name), ``profile`` (a
cost-model profile, see :func:`profile_names`), engine limits (``max_model_len``,
``max_num_seqs``, ``max_num_batched_tokens``, ``num_gpu_blocks``, ``block_size``,
``enable_prefix_caching``), ``fixed_ttft_ms`` + ``fixed_tpot_ms`` (fixed-latency mode
instead of the cost model), ``time_scale`` (run model time faster than wall time),
``kv_role`` (``both``/``prefill``/``decode``) and ``kv_transfer_gbps``,
``kv_events_port`` and ``kv_events_format`` (``"map"``: vLLM >= 0.26, ``"array"``: older),
``lora_modules``, and ``faults`` (:class:`FaultConfig`: error rate
and status, latency spikes, startup delay, dying mid-stream, hanging, crash after N).

Every engine serves vLLM's routes: ``POST /v1/chat/completions``, ``/v1/completions``
(SSE with ``data: [DONE]`` and ``stream_options.include_usage``), ``GET /v1/models``,
``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``, ``POST /tokenize`` /
``/detokenize``, ``GET /health`` (503 until the startup delay passed), ``GET /metrics``
(vLLM's metric names, one registry per engine).

The CLI, ``kubellm sim --port P --replicas N ...``, serves engines on ports P..P+N-1.

Errors (see :mod:`kubellm.sim.errors`)::

    SimError
    ├── SimConfigError
    └── RequestError
        └── ModelNotFoundError
"""

from kubellm.sim.config import FaultConfig, SimConfig
from kubellm.sim.errors import ModelNotFoundError, RequestError, SimConfigError, SimError
from kubellm.sim.fleet import Fleet, run_engine, run_fleet, start_fleet, stop_fleet
from kubellm.sim.profiles import Profile, get_profile, profile_names
from kubellm.sim.server import EngineServer

__all__ = [
    "EngineServer", "FaultConfig", "Fleet", "ModelNotFoundError", "Profile", "RequestError",
    "SimConfig", "SimConfigError", "SimError", "get_profile", "profile_names", "run_engine",
    "run_fleet", "start_fleet", "stop_fleet",
]
