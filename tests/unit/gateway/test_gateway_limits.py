"""Where the buckets live (gateway/limits.py): one process's dict, or the memfd table that
``--workers`` share. The shared table is exercised for real: views through their own file
descriptions in this process, and spawned processes given the table the way the supervisor
gives it to its workers."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubellm.gateway import buckets
from kubellm.gateway.buckets import Levels, Limits, Refusal
from kubellm.gateway.clock import FakeClock
from kubellm.gateway.errors import RateLimitedError
from kubellm.gateway.limits import (LimitStore, LocalLimits, SharedLimits, SharedTable, TableError, TableFullError,
                                    TableHandle)

RPM2 = Limits(2, 0)
TPM600 = Limits(0, 600)
RACE_LIMIT = 20_000  # each of 3 processes tries this many: overlapping for tens of milliseconds


@pytest.fixture
def table() -> Iterator[SharedTable]:
    t = SharedTable(slots=8)
    yield t
    t.close()


@pytest.fixture(params=["local", "shared"])
def store(request: pytest.FixtureRequest, clock: FakeClock, table: SharedTable) -> Iterator[LimitStore]:
    if request.param == "local":
        yield LocalLimits(clock)
        return
    view = SharedLimits(table.fd, clock)
    yield view
    view.close()


def test_rpm_runs_out_and_refills(store: LimitStore, clock: FakeClock):
    assert [store.admit("a", RPM2) for _ in range(2)] == [None, None]
    assert store.admit("a", RPM2) == Refusal("requests", pytest.approx(30.0))
    assert store.admit("b", RPM2) is None  # another tenant's own buckets
    clock.advance(30.0)
    assert store.admit("a", RPM2) is None


def test_tpm_is_charged_after_the_response(store: LimitStore, clock: FakeClock):
    assert store.admit("a", TPM600) is None
    store.charge("a", TPM600, 900)
    assert store.admit("a", TPM600) == Refusal("tokens", pytest.approx(30.1))
    clock.advance(30.2)
    assert store.admit("a", TPM600) is None


def test_views_of_one_table_share_the_buckets(table: SharedTable, clock: FakeClock):
    one, two = SharedLimits(table.fd, clock), SharedLimits(table.fd, clock)
    assert one.admit("a", RPM2) is None
    assert two.admit("a", RPM2) is None
    assert one.admit("a", RPM2) == two.admit("a", RPM2) == Refusal("requests", pytest.approx(30.0))
    one.close()
    two.close()


def test_idle_slots_are_reused_and_a_full_table_refuses_clearly(clock: FakeClock):
    table = SharedTable(slots=2)
    one, two = SharedLimits(table.fd, clock), SharedLimits(table.fd, clock)
    assert one.admit("a", RPM2) is None and one.admit("b", RPM2) is None  # both slots in use
    with pytest.raises(RateLimitedError, match=r"tenant-limits table is full \(2 tenants") as err:
        two.admit("c", RPM2)
    assert err.value.retry_after == 1.0
    clock.advance(30.0)  # "a" and "b" have refilled: their records equal fresh ones
    assert two.admit("c", RPM2) is None  # takes the first idle slot, "a"'s
    assert two.admit("c", RPM2) is None
    assert two.admit("c", RPM2) is not None
    assert one.admit("a", RPM2) is None  # its remembered slot is "c"'s now: it finds "b"'s, idle
    assert one.admit("c", RPM2) == Refusal("requests", pytest.approx(30.0))  # "c" kept its own
    for view in (one, two):
        view.close()
    table.close()


def test_a_charge_whose_slot_was_taken_is_dropped_and_counted_not_refused(clock: FakeClock,
                                                                            caplog: pytest.LogCaptureFixture):
    table = SharedTable(slots=2)
    one, two = SharedLimits(table.fd, clock), SharedLimits(table.fd, clock)
    assert one.admit("a", TPM600) is None  # "a"'s request is admitted, then streams for a while
    clock.advance(1.0)  # "a"'s record has refilled: idle, its slot free to take
    assert two.admit("b", RPM2) is None and two.admit("c", RPM2) is None  # "b" takes "a"'s slot: the table is full
    with pytest.raises(TableFullError):
        one.admit("a", TPM600)  # a new request is still refused
    with caplog.at_level("WARNING", logger="kubellm.gateway.limits"):
        one.charge("a", TPM600, 900)  # the finished response's charge: no 429
        one.charge("a", TPM600, 100)
    assert one.dropped_charges == 2 and two.dropped_charges == 0
    assert [r.getMessage() for r in caplog.records] == [
        "tenant 'a': 900 tokens not charged, the shared tenant-limits table is full (2 tenants with limits in use at "
        "once); further dropped charges are only counted"]
    assert two.admit("b", RPM2) is None and two.admit("b", RPM2) is not None  # "b" kept its own record
    for view in (one, two):
        view.close()
    table.close()


def test_a_new_tenant_s_slot_is_looked_for_without_the_lock(table: SharedTable, clock: FakeClock,
                                                          monkeypatch: pytest.MonkeyPatch):
    """Finding a slot for a tenant not placed yet (here: every slot in use, the last one idle)
    checks the slots with the lock released; under it only the chosen slot is checked. Before,
    every slot was checked holding the table's lock (6 ms for 4096 slots: docs/gateway.md)."""
    view = SharedLimits(table.fd, clock)
    for i in range(table.slots - 1):
        assert view.admit(f"busy{i}", RPM2) is None  # 1 of 2 left: refills in 30 s
    assert view.admit("brief", Limits(600, 0)) is None  # the last slot: refills in 0.1 s
    clock.advance(0.2)
    probe = os.open(f"/proc/self/fd/{table.fd}", os.O_RDWR)  # a description of its own: flock excludes it
    checks: list[bool] = []  # per idle check: was the table locked?

    def locked() -> bool:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False

    def idle(levels: Levels, now: float) -> bool:
        checks.append(locked())
        return real_idle(levels, now)

    real_idle = buckets.idle
    monkeypatch.setattr(buckets, "idle", idle)
    try:
        assert view.admit("newcomer", RPM2) is None
        with pytest.raises(TableFullError):
            view.admit("brief", Limits(600, 0))  # its slot is the newcomer's now
    finally:
        os.close(probe)
        view.close()
    assert checks.count(False) >= table.slots - 1  # the look: every slot, unlocked
    assert checks.count(True) <= 2  # under the lock: the chosen slot (per admit), not all of them


def test_a_descriptor_that_is_not_a_table_is_refused():
    other = os.memfd_create("other")
    os.ftruncate(other, 4096)
    try:
        with pytest.raises(TableError, match=f"file descriptor {other} is not a kubellm tenant-limits table"):
            SharedLimits(other)
    finally:
        os.close(other)


# -- across processes, as the workers use it -------------------------------------------------
def _race(target: Callable[..., None], *args: object) -> list[int]:
    """Three spawned processes run ``target(*args, start, results)`` from one barrier; what each put."""
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = ctx.Queue()
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=target, args=(*args, start, results)) for _ in range(3)]
    for p in procs:
        p.start()
    done = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    return done


def _hammer(handle: TableHandle, attempts: int, start: Any, results: "multiprocessing.Queue[int]") -> None:
    view = SharedLimits.attach(handle, FakeClock())  # a frozen clock: no refill while racing
    start.wait()
    results.put(sum(view.admit("team", Limits(RACE_LIMIT, 0)) is None for _ in range(attempts)))


def test_processes_racing_admit_exactly_the_limit_in_total(table: SharedTable):
    admitted = _race(_hammer, table.handle(), RACE_LIMIT)
    assert sum(admitted) == RACE_LIMIT, admitted  # not up to 3 x the limit: one set of buckets, no lost update
    assert min(admitted) > 0, admitted  # they did race


def _place(handle: TableHandle, tenants: list[str], start: Any, results: "multiprocessing.Queue[int]") -> None:
    view = SharedLimits.attach(handle, FakeClock())
    start.wait()
    results.put(sum(view.admit(t, RPM2) is None for _ in range(3) for t in tenants))


def test_processes_placing_the_same_new_tenants_make_one_record_each():
    """Three processes place the same 150 new tenants at once: each tenant gets one record (one
    set of buckets: exactly its limit of 2 admitted in total), however their looks interleave."""
    table = SharedTable(slots=256)
    tenants = [f"t{i}" for i in range(150)]
    admitted = _race(_place, table.handle(), tenants)
    records = os.pread(table.fd, 256 * 64, 64)
    table.close()
    assert sum(admitted) == 2 * len(tenants), admitted
    digests = [records[i:i + 16] for i in range(0, len(records), 64) if any(records[i:i + 16])]
    assert len(digests) == len(set(digests)) == len(tenants)


def _hold_the_lock(handle: TableHandle, ready: "multiprocessing.Queue[int]") -> None:
    import fcntl
    import time

    fd = os.open(f"/proc/self/fd/{handle.fd}", os.O_RDWR)  # a description of its own, as a view's
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.put(os.getpid())
    time.sleep(60)


def test_a_worker_killed_holding_the_lock_does_not_wedge_the_others(table: SharedTable, clock: FakeClock):
    ctx = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[int] = ctx.Queue()
    holder = ctx.Process(target=_hold_the_lock, args=(table.handle(), ready))
    holder.start()
    ready.get(timeout=60)
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(10)
    view = SharedLimits(table.fd, clock)
    assert view.admit("a", RPM2) is None  # the kernel dropped the dead process's lock
    view.close()


def test_a_gateway_reload_keeps_the_workers_shared_store(table: SharedTable, clock: FakeClock):
    """What serve.py does in a worker (the shared store), then a config reload: the new
    registry admits against the same table, so an exhausted tenant stays refused."""
    from kubellm.gateway.app import Gateway
    from kubellm.gateway.config import parse_config

    def config(rpm: int) -> dict[str, object]:
        return {"models": [{"name": "m", "endpoints": ["http://10.0.0.1:8000"]}],
                "auth": {"tenants": [{"name": "anonymous", "rpm": rpm}]}}

    gateway = Gateway(parse_config(config(2)), clock=clock)
    shared = gateway.tenants.limits = SharedLimits(table.fd, clock)
    tenant = gateway.tenants.authenticate(None)
    gateway.tenants.admit(tenant, "m")
    gateway.tenants.admit(tenant, "m")
    gateway.apply_config(parse_config(config(3)))
    assert gateway.tenants.limits is shared
    tenant = gateway.tenants.authenticate(None)
    with pytest.raises(RateLimitedError) as err:
        gateway.tenants.admit(tenant, "m")
    assert err.value.retry_after == pytest.approx(20.0)  # refilling at the reloaded 3 per minute
    shared.close()
