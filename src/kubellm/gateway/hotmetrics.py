"""The per-request series: plain Python numbers, exposed through a custom collector.

Every request records about ten series. Through ``prometheus_client``'s ``Counter`` and
``Histogram`` each update validates the metric, takes a lock and, for a histogram, walks its
buckets in a Python loop: about 40,000 of the roughly 336,000 instructions a proxied request
costs the gateway (valgrind, ``bench/results``; docs/gateway.md). The gateway's request
path runs on one event-loop thread, so here a series is an object with a number (or bucket
counts found by ``bisect``) that the request increments, and each family is a
``prometheus_client`` custom collector (its documented extension point) registered under the
same names, types, labels and help as before, ``_created`` samples included (unless
``PROMETHEUS_DISABLE_CREATED_SERIES`` turns them off, as for ``prometheus_client``'s own). Its
``describe()`` gives the registry its names: duplicates are refused and name-restricted scrapes
include it. Scrapes, `PeerMetrics` merging and ``registry.get_sample_value`` read them as they
read any collector.

Updates must come from the event loop's thread (the collector reads without a lock).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from prometheus_client import metrics as _client_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

S = TypeVar("S")
M = TypeVar("M", bound=Metric)


class CounterSeries:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


class GaugeSeries:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramSeries:
    __slots__ = ("_bounds", "counts", "sum", "created")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self._bounds, amount)] += 1  # bisect_left: a bound is "le"
        self.sum += amount


def _created(created: float) -> float | None:
    """A series' ``_created`` value, or None where ``prometheus_client`` leaves those samples out
    (``PROMETHEUS_DISABLE_CREATED_SERIES``, ``disable_created_metrics()``: its module flag, read
    at each scrape as its own metrics do)."""
    return created if getattr(_client_metrics, "_use_created", True) else None


class Family(Collector, Generic[S, M]):
    """One metric: its series by label values. ``labels(*values)`` returns the series,
    made on first use; :meth:`remove_by_labels` drops matching ones (a later ``labels`` call
    makes a fresh one, so no increment after the removal is lost). Registered in *registry*
    when given, as a ``prometheus_client`` metric is."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series: dict[tuple[str, ...], S] = {}
        if registry is not None:
            registry.register(self)

    def _new(self) -> S:
        raise NotImplementedError

    def labels(self, *values: str) -> S:
        series = self.series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
            series = self.series[values] = self._new()
        return series

    def remove_by_labels(self, match: Mapping[str, str]) -> None:
        """Drop the series whose labels include *match*; a label the family lacks is a
        ``ValueError``, as prometheus_client's own metrics have it."""
        unknown = [k for k in match if k not in self.labelnames]
        if unknown:
            raise ValueError(f"unknown label names {unknown}; expected {list(self.labelnames)}")
        where = [(self.labelnames.index(k), v) for k, v in match.items()]
        for key in [k for k in self.series if all(k[i] == v for i, v in where)]:
            del self.series[key]

    def _family(self) -> M:
        """The metric without samples: what :meth:`describe` gives and :meth:`collect` fills."""
        raise NotImplementedError

    def _add(self, family: M, values: list[str], series: S) -> None:
        """One series' samples."""
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, series in list(self.series.items()):
            self._add(family, list(values), series)
        yield family


class HotCounter(Family[CounterSeries, CounterMetricFamily]):
    def _new(self) -> CounterSeries:
        return CounterSeries()

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: CounterMetricFamily, values: list[str], series: CounterSeries) -> None:
        family.add_metric(values, series.value, created=_created(series.created))


class HotGauge(Family[GaugeSeries, GaugeMetricFamily]):
    def _new(self) -> GaugeSeries:
        return GaugeSeries()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: GaugeMetricFamily, values: list[str], series: GaugeSeries) -> None:
        family.add_metric(values, series.value)


class HotHistogram(Family[HistogramSeries, HistogramMetricFamily]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float],
                 registry: CollectorRegistry | None = None) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._edges = [*(_le(b) for b in self.bounds), "+Inf"]
        super().__init__(name, documentation, labelnames, registry)

    def _new(self) -> HistogramSeries:
        return HistogramSeries(self.bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: HistogramMetricFamily, values: list[str], series: HistogramSeries) -> None:
        cumulative, running = [], 0
        for edge, n in zip(self._edges, series.counts):
            running += n
            cumulative.append((edge, running))
        family.add_metric(values, cumulative, series.sum)
        if (created := _created(series.created)) is not None:
            family.samples.append(family.samples[-1]._replace(  # as Histogram's _created sample
                name=self.name + "_created", labels=dict(zip(self.labelnames, values)), value=created))


def _le(bound: float) -> str:
    """A bucket's ``le`` label as ``prometheus_client`` writes it (``0.005``, ``1.0``, ``+Inf``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
