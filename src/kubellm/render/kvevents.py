"""Engine flags for precise prefix routing (`spec.routing.precisePrefix`), pure.

The engines publish KV-cache events on ZMQ (vLLM's ``--kv-events-config``), hash blocks
with the chosen algorithm, block size and seed (``PYTHONHASHSEED``), and publish hashes in
the 64-bit form (``VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1``, vLLM's default, pinned so
that a changed default cannot silently stop every match). The gateway config built from the
same spec (:mod:`kubellm.gateway.fromspec`) hashes prompts identically.
"""

from __future__ import annotations

import json

from kubellm.spec import LLMService
from kubellm.spec.routing import PrecisePrefix

KV_EVENTS_TOPIC = "kv"


def kv_events_config(p: PrecisePrefix) -> str:
    """vLLM's ``--kv-events-config`` JSON: publish on every interface of the pod (the
    NetworkPolicy admits only the gateway to the port)."""
    return json.dumps({"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://*:{p.kv_events_port}",
                       "topic": KV_EVENTS_TOPIC}, sort_keys=True, separators=(",", ":"))


def kv_event_args(svc: LLMService) -> list[str]:
    p = svc.spec.routing.precise_prefix
    if p is None:
        return []
    return ["--kv-events-config", kv_events_config(p), "--prefix-caching-hash-algo", p.hash_algo,
            "--block-size", str(p.block_size)]


def kv_event_env(svc: LLMService) -> list[tuple[str, str]]:
    p = svc.spec.routing.precise_prefix
    if p is None:
        return []
    env = [("VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES", "1")]
    return env + ([("PYTHONHASHSEED", p.hash_seed)] if p.hash_seed is not None else [])


def kv_events_ports(svc: LLMService) -> list[int]:
    """Ports the gateway must reach on the engines besides the API port."""
    p = svc.spec.routing.precise_prefix
    return [] if p is None else [p.kv_events_port]
