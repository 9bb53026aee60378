"""vLLM's Prometheus metrics for one engine, in a registry of its own.

Names, types and buckets follow vLLM V1 (``vllm/v1/metrics/loggers.py``); every series
has the ``model_name`` and ``engine`` labels vLLM sets. Counts live in plain attributes
of :class:`EngineStats` that the engine bumps without locks (one event loop), and one
collector turns them into metric families at scrape time, so a step that emits tokens
for a hundred sequences updates a histogram with one call instead of a hundred.
The deprecated ``vllm:gpu_cache_usage_perc`` / ``vllm:gpu_prefix_cache_*`` names are
also exported, as routers in the wild still read them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
               5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                   50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ITERATION_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000,
                 50000, 100000)


class Histogram:
    """A cumulative histogram that accepts many equal observations at once."""

    __slots__ = ("bounds", "counts", "total", "n")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.n += times

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, c in zip(self.bounds, self.counts):
            running += c
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(self.n)))
        return out


class EngineStats:
    """Counters, gauges and histograms of one engine (plain attributes)."""

    def __init__(self) -> None:
        self.num_running = 0
        self.num_waiting = 0
        self.kv_usage = 0.0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.running_loras: dict[str, int] = {}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(LATENCY_BUCKETS)
        self.queue = Histogram(LATENCY_BUCKETS)
        self.prefill = Histogram(LATENCY_BUCKETS)
        self.decode = Histogram(LATENCY_BUCKETS)
        self.inference = Histogram(LATENCY_BUCKETS)
        self.prompt_len = Histogram(TOKEN_BUCKETS)
        self.gen_len = Histogram(TOKEN_BUCKETS)
        self.iteration_tokens = Histogram(ITERATION_BUCKETS)


class VllmCollector(Collector):
    """Exports one engine's :class:`EngineStats` under vLLM's metric names."""

    def __init__(self, stats: EngineStats, model_name: str, engine_index: int,
                 cache_info: dict[str, str], max_lora: int) -> None:
        self._s = stats
        self._labels = {"model_name": model_name, "engine": str(engine_index)}
        self._cache_info = cache_info
        self._max_lora = max_lora

    def collect(self) -> Iterator[Metric]:
        yield from self._gauges()
        yield from self._counters()
        yield from self._histograms()
        yield from self._info()

    def _family(self, kind: type, name: str, doc: str, value: float) -> Metric:
        fam = kind(name, doc, labels=list(self._labels))
        fam.add_metric(list(self._labels.values()), value)
        return fam  # type: ignore[no-any-return]

    def _gauges(self) -> Iterator[Metric]:
        s, g = self._s, GaugeMetricFamily
        yield self._family(g, "vllm:num_requests_running", "Number of requests in model execution batches.", s.num_running)
        yield self._family(g, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.num_waiting)
        yield self._family(g, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kv_usage)
        yield self._family(g, "vllm:gpu_cache_usage_perc", "GPU KV-cache usage (deprecated name, still exported).", s.kv_usage)

    def _counters(self) -> Iterator[Metric]:
        s, c = self._s, CounterMetricFamily
        yield self._family(c, "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", s.prefix_queries)
        yield self._family(c, "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", s.prefix_hits)
        yield self._family(c, "vllm:gpu_prefix_cache_queries", "Deprecated name of vllm:prefix_cache_queries.", s.prefix_queries)
        yield self._family(c, "vllm:gpu_prefix_cache_hits", "Deprecated name of vllm:prefix_cache_hits.", s.prefix_hits)
        yield self._family(c, "vllm:num_preemptions", "Cumulative number of preemption from the engine.", s.preemptions)
        yield self._family(c, "vllm:prompt_tokens", "Number of prefill tokens processed.", s.prompt_tokens)
        yield self._family(c, "vllm:generation_tokens", "Number of generation tokens processed.", s.generation_tokens)
        fam = CounterMetricFamily("vllm:request_success", "Count of successfully processed requests.",
                                  labels=[*self._labels, "finished_reason"])
        for reason, n in s.success.items():
            fam.add_metric([*self._labels.values(), reason], n)
        yield fam

    def _histograms(self) -> Iterator[Metric]:
        s = self._s
        table = (
            ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", s.ttft),
            ("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", s.itl),
            ("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds (deprecated name).", s.itl),
            ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", s.e2e),
            ("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", s.queue),
            ("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", s.inference),
            ("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", s.prefill),
            ("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", s.decode),
            ("vllm:request_prompt_tokens", "Number of prefill tokens processed.", s.prompt_len),
            ("vllm:request_generation_tokens", "Number of generation tokens processed.", s.gen_len),
            ("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", s.iteration_tokens),
        )
        for name, doc, h in table:
            fam = HistogramMetricFamily(name, doc, labels=list(self._labels))
            fam.add_metric(list(self._labels.values()), h.buckets(), h.total)
            yield fam

    def _info(self) -> Iterator[Metric]:
        cache = GaugeMetricFamily("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                                  labels=[*self._labels, *self._cache_info])
        cache.add_metric([*self._labels.values(), *self._cache_info.values()], 1.0)
        yield cache
        lora = GaugeMetricFamily("vllm:lora_requests_info", "Running stats on lora requests.",
                                 labels=["max_lora", "waiting_lora_adapters", "running_lora_adapters"])
        running = ",".join(sorted(k for k, v in self._s.running_loras.items() if v > 0))
        lora.add_metric([str(self._max_lora), "", running], time.time())
        yield lora


def build_registry(collector: VllmCollector) -> CollectorRegistry:
    """A registry of its own for one engine (never the global default registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
