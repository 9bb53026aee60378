"""`kubellm gateway --workers 2` over real HTTP on loopback, in front of real `kubellm sim` engines.

Every connection below is a fresh one, so the kernel's SO_REUSEPORT hash spreads them over
the workers; each worker's own series (``/metrics?scope=worker``) carry
``kubellm_gateway_worker{worker="i"}``, which tells which worker answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests import processes

BODY = {"model": "m", "prompt": "hello", "max_tokens": 2}


@pytest.fixture(scope="module")
def engines() -> Iterator[list[str]]:
    proc, urls = processes.start(["sim", "--port", "0", "--replicas", "2", "--model", "m", "--fixed-ttft-ms", "5",
                                 "--fixed-tpot-ms", "10"], "serving http://", count=2)
    try:
        yield urls
    finally:
        processes.stop(proc)


def _write_config(path: Path, urls: list[str], *aliases: str, **extra: object) -> None:
    models = [{"name": "m", "endpoints": urls, "aliases": list(aliases)}]
    path.write_text(yaml.safe_dump({"models": models, "accessLog": False, **extra}))


@pytest.fixture
def gateway(tmp_path: Path, engines: list[str]) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    cfg = tmp_path / "gateway.yaml"
    _write_config(cfg, engines, timeouts={"drainS": 20})
    proc, found = processes.start(["gateway", "--config", str(cfg), "--port", "0", "--workers", "2", "--log-level", "warning"],
                                  "listening on http://")
    try:
        yield proc, found[0], cfg
    finally:
        processes.stop(proc)


def _fresh_post(url: str, body: dict[str, object]) -> int:
    return httpx.post(url + "/v1/completions", json=body, timeout=10).status_code  # one connection each


def _series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def _requests_total(text: str) -> float:
    return sum(_series(text, "kubellm_requests_total").values())


def _worker_of(text: str) -> str:
    (labels,) = _series(text, "kubellm_gateway_worker")
    return dict(labels)["worker"]


def _own_scrapes(url: str, tries: int = 40) -> dict[str, str]:
    """Each worker's own exposition, found by scraping over fresh connections."""
    seen: dict[str, str] = {}
    for _ in range(tries):
        text = httpx.get(url + "/metrics", params={"scope": "worker"}, timeout=10).text
        seen[_worker_of(text)] = text
        if len(seen) == 2:
            break
    return seen


def _worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes (its children less multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(p) for p in children if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]


def test_requests_spread_over_workers_and_metrics_add_up(gateway: tuple[subprocess.Popen[str], str, Path]):
    proc, url, _ = gateway
    assert len(_worker_pids(proc.pid)) == 2
    statuses = [_fresh_post(url, BODY) for _ in range(30)]
    assert statuses == [200] * 30
    own = _own_scrapes(url)
    assert sorted(own) == ["0", "1"]
    per_worker = {w: _requests_total(t) for w, t in own.items()}
    assert all(n > 0 for n in per_worker.values()), per_worker  # both workers served requests
    merged = httpx.get(url + "/metrics", timeout=10).text
    assert _requests_total(merged) == sum(per_worker.values()) == 30
    assert sorted(dict(k)["worker"] for k in _series(merged, "kubellm_gateway_worker")) == ["0", "1"]
    healthy = _series(merged, "kubellm_endpoint_healthy")
    assert len(healthy) == 2 and set(healthy.values()) == {1.0}  # max over workers, not a sum


def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(gateway: tuple[subprocess.Popen[str], str, Path]):
    proc, url, _ = gateway
    victim = _worker_pids(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    # the survivor takes every new connection meanwhile
    assert [_fresh_post(url, BODY) for _ in range(10)] == [200] * 10
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _worker_pids(proc.pid)
        if len(pids) == 2 and victim not in pids and len(_own_scrapes(url, tries=10)) == 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the killed worker was not replaced within 60 s: " + "".join(processes.OUTPUT[-20:]))
    assert any("exited (code -9); starting a new one" in line for line in processes.OUTPUT)  # reaped, not left a zombie
    assert [_fresh_post(url, BODY) for _ in range(10)] == [200] * 10


def test_every_worker_reloads_the_config(gateway: tuple[subprocess.Popen[str], str, Path], engines: list[str]):
    _, url, cfg = gateway
    assert _fresh_post(url, {**BODY, "model": "alias"}) == 404
    _write_config(cfg, engines, "alias", timeouts={"drainS": 20})
    deadline = time.monotonic() + 20
    while _fresh_post(url, {**BODY, "model": "alias"}) != 200:
        assert time.monotonic() < deadline, "the new model was never served"
        time.sleep(0.3)
    time.sleep(1.5)  # each worker polls the file once a second
    assert [_fresh_post(url, {**BODY, "model": "alias"}) for _ in range(20)] == [200] * 20


def test_sigterm_drains_every_worker(gateway: tuple[subprocess.Popen[str], str, Path]):
    proc, url, _ = gateway
    pids = _worker_pids(proc.pid)

    async def scenario() -> list[int]:
        async def stream() -> int:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)  # its own connections
            s = await client.completions.create(model="m", prompt="go", max_tokens=300, stream=True)
            n = 0
            async for chunk in s:
                n += bool(chunk.choices and chunk.choices[0].text)
            await client.close()
            return n

        tasks = [asyncio.ensure_future(stream()) for _ in range(8)]
        await asyncio.sleep(0.5)  # streams are running (300 tokens x 10 ms each)
        own = await asyncio.to_thread(_own_scrapes, url)
        in_flight = {w: sum(_series(t, "kubellm_requests_in_flight").values()) for w, t in own.items()}
        assert len(in_flight) == 2 and all(in_flight.values()), in_flight  # both workers are mid-stream
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while True:  # soon no worker accepts any more
            try:
                await asyncio.to_thread(httpx.get, url + "/health", timeout=2)
            except httpx.ConnectError:
                break
            assert time.monotonic() < deadline, "a worker still accepts connections 3 s after SIGTERM"
            await asyncio.sleep(0.1)
        return await asyncio.gather(*tasks)

    counts = asyncio.run(scenario())
    assert counts == [300] * 8  # streams in flight on both workers finished whole
    assert proc.wait(20) == 0
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]


def test_a_worker_draining_alone_leaves_the_others_metrics_whole(gateway: tuple[subprocess.Popen[str], str, Path]):
    """SIGTERM to one worker (not the supervisor): it drains its streams and is replaced, and
    the other worker's merged /metrics answers throughout with its own series; once the
    replacement is up both are listed again. (Checked for a report that a draining worker
    closed its peers' metrics sockets: it does not, on either server; and while it drains it
    is still in the merged exposition: the fast server kept its Unix socket open only until
    its drain began.)"""
    proc, url, _ = gateway
    victim, survivor = _worker_pids(proc.pid)

    async def scenario() -> tuple[list[int], list[list[str]]]:
        async def stream() -> int:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            s = await client.completions.create(model="m", prompt="go", max_tokens=150, stream=True)
            n = sum([bool(chunk.choices and chunk.choices[0].text) async for chunk in s])
            await client.close()
            return n

        tasks = [asyncio.ensure_future(stream()) for _ in range(6)]  # fresh connections: on both workers
        await asyncio.sleep(0.4)
        os.kill(victim, signal.SIGTERM)
        await asyncio.sleep(0.2)  # its drain has begun; its streams have about a second to go
        listed: list[list[str]] = []
        while not all(t.done() for t in tasks):  # the victim's drain: its streams still running
            text = (await asyncio.to_thread(httpx.get, url + "/metrics", timeout=5)).text
            listed.append(sorted(dict(k)["worker"] for k in _series(text, "kubellm_gateway_worker")))
            await asyncio.sleep(0.1)
        return await asyncio.gather(*tasks), listed

    counts, listed = asyncio.run(scenario())
    assert counts == [150] * 6  # the victim's streams finished whole
    assert listed and all(workers and len(workers) <= 2 for workers in listed), listed  # always answered
    assert listed[0] == ["0", "1"], listed  # the draining worker still answers its peers' scrapes
    deadline = time.monotonic() + 30
    while len(_own_scrapes(url, tries=10)) < 2 or victim in _worker_pids(proc.pid):
        assert time.monotonic() < deadline, "the drained worker was not replaced: " + "".join(processes.OUTPUT[-20:])
        time.sleep(0.3)
    assert survivor in _worker_pids(proc.pid)
    for _ in range(10):  # fresh connections: answered by either worker, each reaching the other's socket
        merged = httpx.get(url + "/metrics", timeout=10).text
        assert sorted(dict(k)["worker"] for k in _series(merged, "kubellm_gateway_worker")) == ["0", "1"]
    assert any("exited (code 0); starting a new one" in line for line in processes.OUTPUT)


def test_a_replacement_that_cannot_start_is_retried_with_backoff(gateway: tuple[subprocess.Popen[str], str, Path],
                                                                 engines: list[str]):
    """The config file turns invalid (the running workers reject it and keep theirs), then a
    worker dies: its replacement cannot load the file. The supervisor retries after 1, 2, 4 s
    ... with a one-line reason, not at once in a loop (before: 14 spawns in 10 s, each with a
    traceback), and the worker is back once the file is fixed."""
    proc, url, cfg = gateway
    cfg.write_text("models: [ {name: m, bogus: 1} ]")
    victim = _worker_pids(proc.pid)[0]
    seen = len(processes.OUTPUT)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not any("2 time(s) in a row" in line for line in processes.OUTPUT[seen:]):
        assert time.monotonic() < deadline, "no backoff: " + "".join(processes.OUTPUT[-10:])
        time.sleep(0.2)
    lines = processes.OUTPUT[seen:]
    restarts = [line for line in lines if "starting a new one" in line]
    assert len(restarts) == 3, restarts  # at once (it had been listening), then after 1 s, then 2 s: no loop
    assert "(code -9); starting a new one\n" in restarts[0]
    assert "in 1s (it exited before listening, 1 time(s) in a row)" in restarts[1]
    assert any("cannot start: invalid gateway config" in line for line in lines)
    assert [_fresh_post(url, BODY) for _ in range(5)] == [200] * 5  # the survivor serves meanwhile
    assert not any("Traceback" in line for line in lines)
    _write_config(cfg, engines, timeouts={"drainS": 20})
    deadline = time.monotonic() + 30
    while len(_worker_pids(proc.pid)) < 2 or len(_own_scrapes(url, tries=10)) < 2:
        assert time.monotonic() < deadline, "the worker did not come back: " + "".join(processes.OUTPUT[-10:])
        time.sleep(0.5)
