"""The data layer: engine metrics and health gathered into endpoint state.

Parsing is pure (:func:`parse_engine_metrics`); :class:`Prober` does the I/O on one
shared client session, one task per pool, and only writes fields of :class:`Endpoint`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp

from kubellm.gateway.endpoint import Endpoint

log = logging.getLogger("kubellm.gateway.datalayer")

_GAUGES = {
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_running": "running",
    "vllm:kv_cache_usage_perc": "kv_usage",
    "vllm:gpu_cache_usage_perc": "kv_usage_old",
    "vllm:request_decode_time_seconds_sum": "decode_s_sum",  # counters, read by the latency learner
    "vllm:request_decode_time_seconds_count": "decode_count",
}
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    waiting: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0
    loras: frozenset[str] = frozenset()
    decode_s_sum: float = _NAN  # not reported
    decode_count: float = _NAN
    kv_blocks: float = _NAN  # vllm:cache_config_info's num_gpu_blocks (NaN: not reported)
    block_size: float = _NAN  # and its block_size, in tokens


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split('",'):
        key, _, value = part.partition('="')
        out[key.strip().strip(",")] = value.rstrip('"')
    return out


def parse_engine_metrics(text: str) -> EngineMetrics:
    """Sum the vLLM gauges over label sets (one engine may report per-model series).

    ``vllm:kv_cache_usage_perc`` wins over the deprecated ``vllm:gpu_cache_usage_perc``.
    """
    sums: dict[str, float] = {}
    loras: set[str] = set()
    cache: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if name_end < 0:
            continue
        name = line[:name_end]
        if name == "vllm:lora_requests_info" and "{" in line:
            labels = _labels(line[line.index("{") + 1:line.rindex("}")])
            for key in ("running_lora_adapters", "waiting_lora_adapters"):
                loras.update(a for a in labels.get(key, "").split(",") if a)
            continue
        if name == "vllm:cache_config_info" and "{" in line:
            cache = _labels(line[line.index("{") + 1:line.rindex("}")])
            continue
        field = _GAUGES.get(name)
        if field is None:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1]) if "}" not in line else float(line[line.rindex("}") + 1:].split()[0])
        except (ValueError, IndexError):
            continue
        sums[field] = sums.get(field, 0.0) + value
    kv = sums.get("kv_usage", sums.get("kv_usage_old", 0.0))
    return EngineMetrics(sums.get("waiting", 0.0), sums.get("running", 0.0), kv, frozenset(loras),
                         sums.get("decode_s_sum", _NAN), sums.get("decode_count", _NAN),
                         _number(cache.get("num_gpu_blocks")), _number(cache.get("block_size")))


def _number(text: str | None) -> float:
    """A label's value as a number; NaN when absent or not one (the latency model then ignores it)."""
    try:
        return float(text) if text is not None else _NAN
    except ValueError:
        return _NAN


def apply_metrics(ep: Endpoint, m: EngineMetrics) -> None:
    ep.waiting, ep.running, ep.kv_usage, ep.loras, ep.scraped = m.waiting, m.running, m.kv_usage, m.loras, True
    ep.decode_s_sum, ep.decode_count = m.decode_s_sum, m.decode_count
    ep.kv_blocks, ep.block_size = m.kv_blocks, m.block_size
    ep.outstanding_at_scrape = ep.outstanding  # the gauges are as of now: later sends correct them
    ep.queued_scrapes = ep.queued_scrapes + 1 if m.waiting > 0 else 0


class Prober:
    """Active health checks and metric scrapes of a set of endpoints."""

    def __init__(self, session: aiohttp.ClientSession, endpoints: Callable[[], Iterable[Endpoint]],
                 on_health_change: Callable[[Endpoint], None], *, scrape_s: float, health_s: float) -> None:
        self._session = session
        self._endpoints = endpoints
        self._on_change = on_health_change
        self._scrape_s = scrape_s
        self._health_s = health_s
        self._timeout = aiohttp.ClientTimeout(total=max(0.5, min(2.0, health_s)))

    async def check_health(self, ep: Endpoint) -> None:
        try:
            async with self._session.get(ep.url + "/health", timeout=self._timeout) as resp:
                ok = resp.status == 200
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            ok = False
        if ok != ep.healthy:
            ep.healthy = ok
            log.info("endpoint %s is %s", ep.url, "healthy" if ok else "unhealthy")
            self._on_change(ep)

    async def scrape(self, ep: Endpoint) -> None:
        try:
            async with self._session.get(ep.url + "/metrics", timeout=self._timeout) as resp:
                if resp.status != 200:
                    return
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError):
            return
        apply_metrics(ep, parse_engine_metrics(text))

    async def health_round(self) -> None:
        await asyncio.gather(*(self.check_health(e) for e in list(self._endpoints())))

    async def run_health(self) -> None:
        while True:
            await self.health_round()
            # probe quickly while some endpoint is not ready (startup, scale from zero)
            pending = any(not e.healthy for e in self._endpoints())
            await asyncio.sleep(min(0.25, self._health_s) if pending else self._health_s)

    async def run_scrape(self) -> None:
        while True:
            await asyncio.gather(*(self.scrape(e) for e in list(self._endpoints()) if e.healthy))
            await asyncio.sleep(self._scrape_s)
