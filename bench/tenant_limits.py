"""The hot-path cost of tenants' limits: ns per admit and per charge, one process vs shared.

Measures ``TenantRegistry.admit`` / ``charge`` (what a request pays: access check, the
store's admit, and the charge after the response) with the store a single process uses
(``LocalLimits``, a dict) and the one ``--workers`` share (``SharedLimits``: flock, read,
arithmetic, write on a memfd table), the latter also while another process hammers the same
table for the same tenant (the contended case). Plus the bare lock, for scale. Stores are
measured in rounds, alternating, so drift on a shared machine hits all alike; medians over
rounds are printed with the shared/local ratio.

    .venv/bin/python bench/tenant_limits.py [--rounds 5] [--n 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from kubellm.gateway.clock import MonotonicClock
from kubellm.gateway.config import AuthConfig, TenantConfig
from kubellm.gateway.limits import LimitStore, LocalLimits, SharedLimits, SharedTable, TableHandle
from kubellm.gateway.tenants import TenantRegistry

HUGE = 10**12  # limits never reached: every admit is admitted (the common case)


def _registry(store: LimitStore) -> TenantRegistry:
    auth = AuthConfig(tenants=(TenantConfig(name="anonymous", rpm=HUGE, tpm=HUGE),))
    return TenantRegistry(auth, store, [])


def _ns_per_call(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t) / n


def _measure(store: LimitStore, n: int) -> dict[str, float]:
    reg = _registry(store)
    tenant = reg.authenticate(None)
    return {"admit": _ns_per_call(lambda: reg.admit(tenant, "m"), n),
            "charge": _ns_per_call(lambda: reg.charge(tenant, 100), n)}


def _bare_lock(fd: int, n: int) -> float:
    def pair() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    return _ns_per_call(pair, n)


def _hammer(handle: TableHandle, stop: Any) -> None:
    reg = _registry(SharedLimits.attach(handle))
    tenant = reg.authenticate(None)
    while not stop.is_set():
        for _ in range(1000):
            reg.admit(tenant, "m")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200_000, help="calls per measurement")
    ap.add_argument("--json", help="write the medians here")
    args = ap.parse_args()
    table = SharedTable()
    local, shared = LocalLimits(MonotonicClock()), SharedLimits(table.fd)
    own = os.open(f"/proc/self/fd/{table.fd}", os.O_RDWR)
    runs: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, store in (("local", local), ("shared", shared)):
            for op, ns in _measure(store, args.n).items():
                runs.setdefault(f"{name} {op}", []).append(ns)
        runs.setdefault("flock lock+unlock", []).append(_bare_lock(own, args.n))
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    rival = ctx.Process(target=_hammer, args=(table.handle(), stop))
    rival.start()
    time.sleep(1.0)  # it has attached and is hammering
    for _ in range(args.rounds):
        for op, ns in _measure(shared, args.n // 4).items():
            runs.setdefault(f"shared {op}, another process hammering", []).append(ns)
    stop.set()
    rival.join(10)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    for k, v in medians.items():
        print(f"{k:45s} {v:8.0f} ns")
    for op in ("admit", "charge"):
        print(f"shared/local {op}: {medians[f'shared {op}'] / medians[f'local {op}']:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rounds": args.rounds, "n": args.n, "cpus": os.cpu_count(), "ns": medians}, f, indent=2)


if __name__ == "__main__":
    main()
