"""A run whose requests all fail the same way stops early; any success or a second kind of
error means the run measures something and goes on."""

from __future__ import annotations

import pytest

from kubellm.bench.records import RequestRecord
from kubellm.bench.watch import FailureWatch
from tests.unit.bench.conftest import failed_record, ok_record


def _trips(records: list[RequestRecord], limit: int = 3) -> list[int]:
    watch = FailureWatch(limit)
    return [i for i, r in enumerate(records) if watch.observe(r) is not None]


@pytest.mark.parametrize(("records", "tripped_at"), [
    ([failed_record(i) for i in range(5)], [2]),  # once, at the limit
    ([failed_record(i) for i in range(2)], []),  # fewer than the limit
    ([ok_record(0)] + [failed_record(i) for i in range(1, 6)], []),  # a success came first
    ([failed_record(0), failed_record(1, "timeout")] + [failed_record(i) for i in range(2, 6)], []),  # two kinds
])
def test_the_watch_trips_only_on_uniform_failure_from_the_start(records: list[RequestRecord], tripped_at: list[int]) -> None:
    assert _trips(records) == tripped_at


def test_the_reason_names_the_error_kind_and_detail() -> None:
    watch = FailureWatch(2)
    watch.observe(failed_record(0, "connection"))
    reason = watch.observe(failed_record(1, "connection"))
    assert reason == "the first 2 requests all failed the same way (connection: x)"
