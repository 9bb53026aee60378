"""Plugin type names -> factories building the plugin from its config and shared state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubellm.gateway.config import PluginConfig
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.scheduling import filters, pickers, scorers
from kubellm.gateway.scheduling.plugins import Filter, Picker, RoutingState, Scorer

FilterFactory = Callable[[dict[str, Any], RoutingState], Filter]
ScorerFactory = Callable[[dict[str, Any], RoutingState], Scorer]
PickerFactory = Callable[[dict[str, Any], RoutingState], Picker]

FILTERS: dict[str, FilterFactory] = {
    "healthy": lambda p, s: filters.healthy,
    "lora-capable": lambda p, s: filters.lora_capable,
}

SCORERS: dict[str, ScorerFactory] = {
    "outstanding-requests": lambda p, s: scorers.outstanding_requests,
    "queue-depth": lambda p, s: scorers.queue_depth,
    "kv-cache-usage": lambda p, s: scorers.kv_cache_usage,
    "lora-affinity": lambda p, s: scorers.lora_affinity,
    "prefix-affinity": lambda p, s: scorers.make_prefix_scorer(s.prefix),
    "precise-prefix": lambda p, s: scorers.make_prefix_scorer(s.precise_prefix, precise=True,
                                                              miss_blocks=_blocks(p, "precise-prefix", "missBlocks")),
    "session-affinity": lambda p, s: scorers.make_session_scorer(s.sessions),
    "predicted-latency": lambda p, s: scorers.make_latency_scorer(s.latency, s.prefix, s.precise_prefix),
    "slo-latency": lambda p, s: scorers.make_slo_scorer(
        s.latency, s.prefix, s.precise_prefix, ttft_target_s=_ms(p, "ttftTargetMs", required=True) or 0.0,
        tpot_target_s=_ms(p, "tpotTargetMs", required=False)),
}
LATENCY_SCORERS = frozenset({"predicted-latency", "slo-latency"})

PICKERS: dict[str, PickerFactory] = {
    "max-score": lambda p, s: pickers.make_max_score(s.rng),
    "power-of-two": lambda p, s: pickers.make_power_of_two(s.rng),
    "round-robin": lambda p, s: pickers.make_round_robin(),
    "consistent-hash": lambda p, s: pickers.make_consistent_hash(
        s.rng, load_factor=float(p.get("loadFactor") or p.get("load_factor") or 1.25)),
}

_PARAMS: dict[str, frozenset[str]] = {"consistent-hash": frozenset({"loadFactor", "load_factor"}),
                                       "slo-latency": frozenset({"ttftTargetMs", "tpotTargetMs"}),
                                       "precise-prefix": frozenset({"missBlocks"})}


def _blocks(params: dict[str, Any], scorer: str, key: str) -> int | None:
    """An optional positive whole number of blocks."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"scorer {scorer!r}: params.{key} must be a positive whole number of blocks "
                          f"(got {value!r})")
    return value


def _ms(params: dict[str, Any], key: str, *, required: bool) -> float | None:
    """A positive milliseconds parameter, in seconds."""
    value = params.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"scorer 'slo-latency' needs params.{key}, a positive number of milliseconds "
                          f"(got {value!r})")
    return float(value) / 1000.0


def _build(kind: str, table: dict[str, Callable[[dict[str, Any], RoutingState], Any]],
           plugin: PluginConfig, state: RoutingState) -> Any:
    factory = table.get(plugin.type)
    if factory is None:
        raise ConfigError(f"unknown {kind} type {plugin.type!r} (known: {', '.join(sorted(table))})")
    extra = set(plugin.params) - _PARAMS.get(plugin.type, frozenset())
    if extra:
        raise ConfigError(f"{kind} {plugin.type!r} takes no parameter(s) {sorted(extra)}")
    return factory(plugin.params, state)


def build_filter(plugin: PluginConfig, state: RoutingState) -> Filter:
    f: Filter = _build("filter", FILTERS, plugin, state)
    return f


def build_scorer(plugin: PluginConfig, state: RoutingState) -> Scorer:
    s: Scorer = _build("scorer", SCORERS, plugin, state)
    return s


def build_picker(plugin: PluginConfig, state: RoutingState) -> Picker:
    p: Picker = _build("picker", PICKERS, plugin, state)
    return p
