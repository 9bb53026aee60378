from __future__ import annotations

import pytest

from kubellm.gateway.breaker import CircuitBreaker
from kubellm.gateway.clock import FakeClock
from kubellm.gateway.endpoint import Endpoint


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_ep(clock: FakeClock):
    def make(url: str, **fields: object) -> Endpoint:
        ep = Endpoint(url=url, pool="m", breaker=CircuitBreaker(clock, failures=2, open_s=5.0))
        for k, v in fields.items():
            setattr(ep, k, v)
        return ep

    return make
