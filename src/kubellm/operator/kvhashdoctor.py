"""`kubellm doctor`, precise prefix routing: do the gateway and the engines hash blocks alike?

A model the gateway routes precisely (``preciseTokenizer`` in its config) is matched only if
its engines publish KV events and name blocks with the same hash algorithm, block size and
``PYTHONHASHSEED`` as the gateway; otherwise no block hash ever matches and routing silently
falls back to load alone. This compares the gateway config with each engine Deployment's
command line and environment (pure; the facts come from ``gatewaydoctor.gather_gateway``).
At run time the gateway counts the same disagreement in ``kubellm_kv_events_rejected_total``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

Body = dict[str, Any]
Check = tuple[str, Literal["ok", "warn", "fail"], str]
# vLLM's defaults when a flag is absent
DEFAULT_ALGO, DEFAULT_BLOCK_SIZE = "sha256", 16


def flag(args: list[str], name: str) -> str | None:
    """The value of ``name VALUE`` or ``name=VALUE`` in a container's *args* (None: absent)."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _events_on(args: list[str]) -> bool:
    raw = flag(args, "--kv-events-config")
    try:
        cfg = json.loads(raw) if raw else {}
    except ValueError:
        return False
    return isinstance(cfg, dict) and bool(cfg.get("enable_kv_cache_events"))


def engine_hashing(container: Body) -> tuple[str | None, str, str | None, int]:
    """(served model, hash algorithm, PYTHONHASHSEED, block size) of an engine container."""
    args = [str(a) for a in container.get("args") or []]
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    served = flag(args, "--served-model-name") or flag(args, "--model")
    block = flag(args, "--block-size")
    return (served, flag(args, "--prefix-caching-hash-algo") or DEFAULT_ALGO, env.get("PYTHONHASHSEED"),
            int(block) if block and block.isdigit() else DEFAULT_BLOCK_SIZE)


def _describe(algo: str, seed: str | None, block: int) -> str:
    return f"{algo}, PYTHONHASHSEED {'unset' if seed is None else seed}, block size {block}"


def kv_hash_checks(config: Body | None, engines: list[Body]) -> list[Check]:
    precise = [m for m in (config or {}).get("models") or [] if m.get("preciseTokenizer")]
    if not precise:
        return []
    problems, matched = [], 0
    for model in precise:
        want: tuple[str, str | None, int] = (model.get("kvHashAlgo") or DEFAULT_ALGO, model.get("kvHashSeed"),
                                             int(model.get("kvBlockSize") or DEFAULT_BLOCK_SIZE))
        for engine in engines:
            container = engine["spec"]["template"]["spec"]["containers"][0]
            served, algo, seed, block = engine_hashing(container)
            have = (algo, seed, block)
            if served != model.get("servedName", model["name"]):
                continue
            matched += 1
            name = engine["metadata"]["name"]
            if not _events_on([str(a) for a in container.get("args") or []]):
                problems.append(f"{name} publishes no KV events (--kv-events-config) for model {model['name']}")
            elif tuple(have) != want:
                problems.append(f"{name} hashes blocks with {_describe(*have)}, the gateway with {_describe(*want)}: "
                                "no block of it will ever match; set spec.routing.precisePrefix and re-render, "
                                "or align the engine's extraArgs and env")
    if problems:
        return [("gateway-kv-hashing", "fail", "; ".join(problems))]
    return [("gateway-kv-hashing", "ok", f"{matched} engine workload(s) hash KV blocks as the gateway does")]
