"""The supervisor against real `kubellm sim` processes: start, ready, scrape, shrink, stop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kubellm.local.engines import EngineLaunch
from kubellm.local.errors import EngineStartError
from kubellm.local.ports import port_is_free
from kubellm.local.supervisor import Supervisor
from kubellm.local.testing import pid_alive as alive



async def test_replicas_start_serve_shrink_and_leave_nothing(sim_launcher: Callable[[int], EngineLaunch],
                                                            log_dir: Path) -> None:
    published: list[list[str]] = []
    supervisor = Supervisor(sim_launcher, published.append, log_dir, drain_s=5)
    try:
        await supervisor.scale_to(2)
        await supervisor.wait_ready(60)
        while len(supervisor.ready()) < 2:
            await supervisor.ready_changed.wait()
        urls = [r.url for r in supervisor.ready()]
        assert sorted(published[-1]) == sorted(urls)
        async with httpx.AsyncClient() as client:
            body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
            for url in urls:
                response = await client.post(url + "/v1/chat/completions", json=body)
                assert response.status_code == 200, response.text
        await supervisor.refresh_metrics({})
        assert all(r.metrics is not None for r in supervisor.ready())

        pids = supervisor.pids()
        assert len(pids) == 2 and all(alive(p) for p in pids)
        await supervisor.scale_to(1)
        assert len(supervisor.live()) == 1
        assert len(published[-1]) == 1  # the gateway stops seeing the drained one at once
        drained = next(r for r in supervisor.replicas if r.state == "draining")
        assert drained.task is not None
        await drained.task
        assert len(supervisor.pids()) == 1
    finally:
        ports = [int(r.url.rsplit(":", 1)[1]) for r in supervisor.replicas]
        await supervisor.shutdown()
    assert not any(alive(p) for p in pids)
    assert published[-1] == []
    assert all(port_is_free(p) for p in ports)


async def test_an_engine_that_cannot_start_is_reported_with_its_log(log_dir: Path) -> None:

    def broken(port: int) -> EngineLaunch:
        argv = (sys.executable, "-c", "import sys; print('model file is corrupt', file=sys.stderr); sys.exit(3)")
        return EngineLaunch(argv, "/health", None, 10.0)

    supervisor = Supervisor(broken, lambda urls: None, log_dir)
    try:
        await supervisor.scale_to(1)
        with pytest.raises(EngineStartError, match=r"exited with status 3(.|\n)*model file is corrupt"):
            await supervisor.wait_ready(20)
    finally:
        await supervisor.shutdown()
