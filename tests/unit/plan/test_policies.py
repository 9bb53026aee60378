"""The field's policies and kubellm's, table-driven over observations; parameters with ranges."""

from __future__ import annotations

import pytest

from kubellm.plan import params as PR
from kubellm.plan.errors import PlanConfigError
from kubellm.plan.observe import Observation
from kubellm.plan.policies import (MAX_GROWTH, Hpa, HpaParams, KubeAi, KubeAiParams, Kpa, KpaParams, Kubellm,
                                   KubellmParams, forecast_rate)


def obs(now: float = 0.0, replicas: int = 2, ready: int = 2, waiting: float = 0, running: float = 0,
        kv: float = 0.0, gpu: float = 0.0, held: int = 0, short: float = 1.0, long: float = 1.0) -> Observation:
    return Observation(now, replicas, ready, waiting, running, kv, gpu, held, short, long)


@pytest.mark.parametrize(("gpu", "want"), [(80.0, 2), (85.0, 2), (100.0, 3), (200.0, 5), (40.0, 1)])
def test_hpa_ratio_rule_with_tolerance_and_scale_down_window(gpu: float, want: int) -> None:
    # on its first tick the scale-down window holds only this recommendation (as a new HPA)
    hpa = Hpa("hpa-gpu", HpaParams(max_replicas=10))
    assert hpa.desired(obs(gpu=gpu)) == want


def test_hpa_scales_down_once_the_window_has_passed() -> None:
    hpa = Hpa("hpa-gpu", HpaParams(max_replicas=10))
    assert hpa.desired(obs(0, gpu=80)) == 2
    assert hpa.desired(obs(200, gpu=10)) == 2
    assert hpa.desired(obs(400, gpu=10)) == 1


def test_keda_queue_is_summed_waiting_over_five() -> None:
    keda = Hpa("keda-queue", HpaParams(metric="queue", target=5, max_replicas=10))
    assert keda.desired(obs(waiting=31)) == 6  # asks ceil(31 / 5) = 7; HPA adds at most max(100 %, 4 pods)
    assert keda.desired(obs(15, replicas=6, ready=6, waiting=31)) == 6  # 31 / 30: inside the 10 % tolerance
    assert keda.desired(obs(30, replicas=6, ready=6, waiting=40)) == 8


def test_kubeai_averages_in_flight_and_scales_from_zero() -> None:
    k = KubeAi(KubeAiParams(max_replicas=10, target_requests=10))
    assert k.desired(obs(replicas=0, ready=0, held=1)) == 1
    assert k.desired(obs(10, running=49)) == 3  # mean of 1 and 49 in-flight = 25 -> 3


def test_kpa_panics_on_a_burst_and_never_scales_down_while_panicking() -> None:
    k = Kpa(KpaParams(max_replicas=20, target=0.5))
    assert k.desired(obs(0, kv=0.5)) == 2
    assert k.desired(obs(10, kv=2.0 / 2)) == 4  # the 6 s panic window sees 2.0 / 0.5 = 4 = 2x ready
    assert k.desired(obs(12, replicas=4, ready=4, kv=0.01)) == 4  # still panicking: no scale-down
    assert k.desired(obs(80, replicas=4, ready=4, kv=0.01)) == 2  # calm again: at most halved per tick


def test_kubellm_forecast_follows_growth_beyond_noise_only() -> None:
    assert forecast_rate(obs(short=6.3, long=6.0), lead=300.0) == 6.0  # within Poisson noise: the long rate
    assert forecast_rate(obs(short=12.0, long=6.0), lead=300.0) == 12.0 * MAX_GROWTH  # growth, capped
    assert forecast_rate(obs(short=2.0, long=6.0), lead=300.0) == 6.0  # falling: left to the window
    assert forecast_rate(obs(short=0.1, long=0.0), lead=300.0) == 0.1  # too few arrivals to judge a trend


def test_kubellm_divides_demand_by_the_rate_a_replica_serves_with_tolerance_and_backlog() -> None:
    k = Kubellm(KubellmParams(target_rate=2.0, max_replicas=20, cold_start_seconds=300))
    assert k.desired(obs(replicas=2, short=4.3, long=4.3)) == 2  # 2.15 replicas: inside the 10 % tolerance
    assert k.desired(obs(10, replicas=2, short=5.0, long=5.0)) == 2  # the 30 s scale-up window holds it
    assert k.desired(obs(40, replicas=2, short=5.0, long=5.0)) == 3
    k = Kubellm(KubellmParams(target_rate=2.0, max_replicas=20, drain_seconds=10))
    assert k.desired(obs(replicas=2, waiting=40, short=2.0, long=2.0)) == 3  # 2 req/s + 40 waiting over 10 s
    k = Kubellm(KubellmParams(target_rate=2.0, max_replicas=20, min_replicas=0, scale_to_zero=True))
    assert k.desired(obs(replicas=0, ready=0, held=1, short=0.0, long=0.0)) == 1  # activation


@pytest.mark.parametrize(("running", "waiting", "rate", "want"), [
    (0, 0, 3.0, 0),  # nothing in flight for 10 s: zero, though the 5-minute rate still reads 3/s
    (0, 0, 0.0, 0),
    (1, 0, 0.0, 1),  # a request still running: not idle
    (0, 2, 0.0, 1),  # requests waiting in an engine: not idle
])
def test_kubellm_scale_to_zero_idles_from_the_last_request_not_the_rate_window(
        running: float, waiting: float, rate: float, want: int) -> None:
    k = Kubellm(KubellmParams(target_rate=4.0, min_replicas=0, scale_to_zero=True, idle_seconds=10))
    assert k.desired(obs(0, replicas=1, ready=1, running=3, short=3.0, long=3.0)) == 1
    assert k.desired(obs(5, replicas=1, ready=1, short=0.0, long=rate)) == 1  # idle 5 s of 10
    assert k.desired(obs(10, replicas=1, ready=1, running=running, waiting=waiting, short=0.0, long=rate)) == want


@pytest.mark.parametrize(("zero", "want"), [(False, 2), (True, 1)])
def test_kubellm_sizes_by_the_rate_through_an_idle_moment_unless_it_may_go_to_zero(zero: bool, want: int) -> None:
    # nothing in flight at 4.3 req/s: sized by the rate (2.15 replicas, inside the tolerance)
    # without scale to zero; with it, the idle tick asks for the floor (the window holds only it)
    k = Kubellm(KubellmParams(target_rate=2.0, max_replicas=20, min_replicas=0, scale_to_zero=zero, idle_seconds=600))
    assert k.desired(obs(replicas=2, short=4.3, long=4.3)) == want


def test_parameters_out_of_range_name_the_field_and_range() -> None:
    with pytest.raises(PlanConfigError, match=r"policies\.kpa\.panicThreshold: .*allowed range \[1\.1, 10\]"):
        PR.build("kpa", {"panicThreshold": 0.5})
    with pytest.raises(PlanConfigError, match=r"policies\.kubellm\.bogus: .*fields: "):
        PR.build("kubellm", {"bogus": 1})
    with pytest.raises(PlanConfigError, match="unknown policy 'hpa'"):
        PR.parse_sets(["hpa.target=3"])
    assert PR.parse_sets(["kpa.target=0.3", "kpa.stableWindowSeconds=30"]) == {
        "kpa": {"target": "0.3", "stableWindowSeconds": "30"}}
