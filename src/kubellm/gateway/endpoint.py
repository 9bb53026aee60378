"""The state of one engine endpoint, as the data layer keeps it and scorers read it.

Scheduling runs synchronously on the event loop, so the endpoints it reads form a
consistent snapshot for the length of one routing decision; only the data layer
(scraper, health checker, proxy counters) writes these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubellm.gateway.breaker import CircuitBreaker


@dataclass(slots=True, eq=False)
class Endpoint:
    url: str
    pool: str
    breaker: CircuitBreaker
    outstanding: int = 0  # requests in flight through this gateway
    waiting: float = 0.0  # vllm:num_requests_waiting
    running: float = 0.0  # vllm:num_requests_running
    kv_usage: float = 0.0  # vllm:kv_cache_usage_perc, 0..1
    loras: frozenset[str] = field(default_factory=frozenset)  # adapters the engine has active
    healthy: bool = True  # last active health check
    scraped: bool = False  # metrics seen at least once
    decode_s_sum: float = float("nan")  # vllm:request_decode_time_seconds_sum (nan: not reported)
    decode_count: float = float("nan")  # vllm:request_decode_time_seconds_count
    kv_blocks: float = float("nan")  # vllm:cache_config_info's num_gpu_blocks: the engine's KV cache
    block_size: float = float("nan")  # and tokens per block
    # this gateway's in-flight count when the gauges above were read (None: read together with
    # ``outstanding``, nothing to correct); the latency model adds what was sent since
    outstanding_at_scrape: int | None = None
    # consecutive scrapes that found requests waiting: a queue, not a request that arrived
    # between two engine steps (the latency model learns the engines' full batch from these)
    queued_scrapes: int = 0

    def routable(self) -> bool:
        return self.healthy and self.breaker.allows()

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, out={self.outstanding}, wait={self.waiting}, kv={self.kv_usage:.2f})"
