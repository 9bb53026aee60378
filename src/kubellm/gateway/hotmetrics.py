"""The per-request series: plain Python numbers, exposed through a custom collector.

Every request records about ten series. Through ``prometheus_client``'s ``Counter`` and
``Histogram`` each update validates the metric, takes a lock and, for a histogram, walks its
buckets in a Python loop: about 40,000 of the roughly 336,000 instructions a proxied request
costs the gateway (valgrind, ``bench/results``; docs/gateway.md). The gateway's request
path runs on one event-loop thread, so here a series is an object with a number (or bucket
counts found by ``bisect``) that the request increments, and the families are exposed by a
``prometheus_client`` custom collector (its documented extension point) under the same names,
types, labels and help as before, ``_created`` samples included. Scrapes, `PeerMetrics`
merging and ``registry.get_sample_value`` read them as they read any collector.

Updates must come from the event loop's thread (the collector reads without a lock).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

S = TypeVar("S")


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


class Family(Generic[S]):
    """One metric: its series by label values. ``labels(*values)`` returns the series,
    made on first use; :meth:`remove_by_labels` drops matching ones (a later ``labels`` call
    makes a fresh one, so no increment after the removal is lost)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series: dict[tuple[str, ...], S] = {}

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
        where = [(self.labelnames.index(k), v) for k, v in match.items() if k in self.labelnames]
        if len(where) != len(match):
            return
        for key in [k for k in self.series if all(k[i] == v for i, v in where)]:
            del self.series[key]

    def collect(self) -> Metric:
        raise NotImplementedError


class HotCounter(Family[CounterSeries]):
    def _new(self) -> CounterSeries:
        return CounterSeries()

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, s in list(self.series.items()):
            family.add_metric(list(values), s.value, created=s.created)
        return family


class HotGauge(Family[GaugeSeries]):
    def _new(self) -> GaugeSeries:
        return GaugeSeries()

    def collect(self) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, s in list(self.series.items()):
            family.add_metric(list(values), s.value)
        return family


class HotHistogram(Family[HistogramSeries]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(float(b) for b in buckets)

    def _new(self) -> HistogramSeries:
        return HistogramSeries(self.bounds)

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [*(_le(b) for b in self.bounds), "+Inf"]
        for values, s in list(self.series.items()):
            cumulative, running = [], 0
            for edge, n in zip(edges, s.counts):
                running += n
                cumulative.append((edge, running))
            family.add_metric(list(values), cumulative, s.sum)
            family.samples.append(family.samples[-1]._replace(  # as Histogram's _created sample
                name=self.name + "_created", labels=dict(zip(self.labelnames, values)), value=s.created))
        return family


def _le(bound: float) -> str:
    """A bucket's ``le`` label as ``prometheus_client`` writes it (``0.005``, ``1.0``, ``+Inf``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


class HotFamilies(Collector):
    """The collector of a registry's hot families."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.families: list[Family[object]] = []
        registry.register(self)

    def add(self, family: Family[S]) -> Family[S]:
        self.families.append(family)  # type: ignore[arg-type]
        return family

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are checked by the families' own constructors, not the registry
