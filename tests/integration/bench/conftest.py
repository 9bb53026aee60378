"""Bench's integration tests run against the real simulator (kubellm.sim), in-process on loopback."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from kubellm.sim import FaultConfig, SimConfig, run_fleet


@pytest.fixture
def sim() -> Callable[..., AbstractAsyncContextManager[Any]]:
    """``async with sim(ttft_ms, tpot_ms, **faults) as url`` starts one fixed-latency engine."""

    def start(ttft_ms: float, tpot_ms: float, **faults: Any) -> AbstractAsyncContextManager[Any]:
        config = SimConfig(model="m", fixed_ttft_ms=ttft_ms, fixed_tpot_ms=tpot_ms,
                           faults=FaultConfig(**faults))
        return _one(config)

    return start


class _one:
    def __init__(self, config: SimConfig) -> None:
        self._fleet = run_fleet(config, replicas=1)

    async def __aenter__(self) -> str:
        urls = await self._fleet.__aenter__()
        return str(urls[0])

    async def __aexit__(self, *exc: Any) -> None:
        await self._fleet.__aexit__(*exc)


