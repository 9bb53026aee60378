"""Signals gathered from replicas for the policy: sums, means, and 'not observed'."""

from __future__ import annotations

from pathlib import Path

from kubellm.local.engines import EngineLaunch
from kubellm.local.metrics import ReplicaMetrics
from kubellm.local.process import EngineProcess
from kubellm.local.scaler import gather_signals
from kubellm.local.supervisor import Replica, State, Supervisor

LAUNCH = EngineLaunch(("x",), "/health", "/metrics", 1.0)


def _supervisor(tmp_path: Path, replicas: list[tuple[State, ReplicaMetrics | None]]) -> Supervisor:
    supervisor = Supervisor(lambda port: LAUNCH, lambda urls: None, tmp_path)
    for i, (state, metrics) in enumerate(replicas):
        process = EngineProcess(LAUNCH, f"http://127.0.0.1:{i + 1}", tmp_path / "log")
        supervisor.replicas.append(Replica(i, process, state, metrics))
    return supervisor


async def test_sums_demand_and_averages_kv_over_ready_replicas(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, [
        ("ready", ReplicaMetrics(waiting=2, running=4, kv_usage=0.2)),
        ("ready", ReplicaMetrics(waiting=1, running=1, kv_usage=0.6)),
        ("starting", None),
        ("draining", ReplicaMetrics(waiting=9, running=9, kv_usage=1.0)),
    ])
    signals = gather_signals(supervisor, held=1, in_flight=6)
    assert (signals.replicas, signals.ready, signals.waiting, signals.running) == (3, 2, 3, 5)
    assert abs((signals.kv_usage or 0) - 0.4) < 1e-9
    assert (signals.held, signals.in_flight) == (1, 6)
    await supervisor.shutdown()


async def test_nothing_scraped_yet_is_not_observed(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, [("starting", None), ("ready", None)])
    signals = gather_signals(supervisor, held=0, in_flight=0)
    assert (signals.replicas, signals.ready, signals.waiting, signals.kv_usage) == (2, 0, None, None)
    await supervisor.shutdown()


async def test_engine_without_metrics_is_credited_with_gateway_in_flight(tmp_path: Path) -> None:
    bare = EngineLaunch(("x",), "/v1/models", None, 1.0)
    supervisor = Supervisor(lambda port: bare, lambda urls: None, tmp_path)
    supervisor.replicas.append(Replica(0, EngineProcess(bare, "http://127.0.0.1:5", tmp_path / "l"), "ready"))
    await supervisor.refresh_metrics({"http://127.0.0.1:5": 3})
    assert gather_signals(supervisor, held=0, in_flight=3).running == 3
    await supervisor.shutdown()
