"""Leader-election decisions (pure): who may take the lease, and what is written."""

from __future__ import annotations

import datetime as dt

import pytest

from kubellm.operator.errors import KubeApiError
from kubellm.operator.lease import lease_spec, may_take

NOW = dt.datetime(2026, 11, 23, 3, 0, 0, tzinfo=dt.timezone.utc)


def renewed(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("spec", "identity", "expected"),
    [
        ({}, "a", True),
        ({"holderIdentity": "a", "renewTime": renewed(1), "leaseDurationSeconds": 15}, "a", True),
        ({"holderIdentity": "b", "renewTime": renewed(1), "leaseDurationSeconds": 15}, "a", False),
        ({"holderIdentity": "b", "renewTime": renewed(14.9), "leaseDurationSeconds": 15}, "a", False),
        ({"holderIdentity": "b", "renewTime": renewed(15.1), "leaseDurationSeconds": 15}, "a", True),
        ({"holderIdentity": "b", "leaseDurationSeconds": 15}, "a", True),
        ({"holderIdentity": "", "renewTime": renewed(0)}, "a", True),
    ],
)
def test_may_take(spec: dict[str, object], identity: str, expected: bool) -> None:
    assert may_take(spec, identity, NOW) is expected


def test_taking_over_counts_a_transition_and_resets_acquire_time() -> None:
    old = {"holderIdentity": "b", "acquireTime": renewed(100), "renewTime": renewed(60), "leaseTransitions": 2}
    new = lease_spec(old, "a", 15, NOW)
    assert new["holderIdentity"] == "a" and new["leaseTransitions"] == 3
    assert new["acquireTime"] == new["renewTime"] == NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    old = {"holderIdentity": "a", "acquireTime": renewed(100), "renewTime": renewed(5), "leaseTransitions": 2}
    new = lease_spec(old, "a", 15, NOW)
    assert new["acquireTime"] == renewed(100) and new["leaseTransitions"] == 2


async def test_a_leader_that_cannot_renew_stops_before_its_lease_expires() -> None:
    """hold() gives up at two thirds of the term, so no successor can lead while it still does."""
    import asyncio

    from kubellm.operator.lease import LeaderElector, LeaseError

    class Unreachable:
        async def get(self, *args: object) -> None:
            raise KubeApiError(503, "unavailable")

    lost = asyncio.Event()
    elector = LeaderElector(Unreachable(), "l", "ns", "a", duration=3)  # type: ignore[arg-type]
    began = asyncio.get_running_loop().time()
    with pytest.raises(LeaseError, match="lost the lease"):
        await asyncio.wait_for(elector.hold(lost), timeout=10)
    waited = asyncio.get_running_loop().time() - began
    assert lost.is_set() and 2.0 <= waited < 3.0
