"""Tenants' limits across `kubellm gateway --workers 2`, as a user runs it: real processes on
loopback in front of real `kubellm sim` engines, every request on a fresh connection so the
kernel's SO_REUSEPORT hash spreads them over both workers. One set of buckets for the whole
gateway: exactly a tenant's limit is admitted in total, not once per worker.

Which worker answered is read from each worker's own series (``/metrics?scope=worker``).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests import processes

RPM = 4  # refills one request per 15 s: none during a burst of a second or two
KEYS = {"limited": "key-limited-0001", "metered": "key-metered-0001"}
BODY = {"model": "m", "prompt": "hello there", "max_tokens": 20}
MEMFD = "/memfd:kubellm-tenant-limits"


@pytest.fixture(scope="module")
def engines() -> Iterator[list[str]]:
    proc, urls = processes.start(["sim", "--port", "0", "--replicas", "2", "--model", "m", "--fixed-ttft-ms", "1",
                                 "--fixed-tpot-ms", "1"], "serving http://", count=2)
    try:
        yield urls
    finally:
        processes.stop(proc)


@pytest.fixture(scope="module")
def tokens_per_request(engines: list[str]) -> int:
    """What one BODY costs in TPM (prompt + completion), asked of an engine directly."""
    usage = httpx.post(engines[0] + "/v1/completions", json=BODY, timeout=10).json()["usage"]
    return int(usage["prompt_tokens"] + usage["completion_tokens"])


def _start(tmp_path: Path, engines: list[str], tpm: int) -> tuple[subprocess.Popen[str], str]:
    keys = tmp_path / "keys"
    keys.write_text("".join(f"{tenant}:{key}\n" for tenant, key in KEYS.items()))
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "m", "endpoints": engines}], "accessLog": False,
                                   "auth": {"apiKeysFile": str(keys), "tenants": [
                                       {"name": "limited", "rpm": RPM}, {"name": "metered", "tpm": tpm}]}}))
    proc, found = processes.start(["gateway", "--config", str(cfg), "--port", "0", "--workers", "2",
                                   "--log-level", "warning"], "listening on http://")
    return proc, found[0]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, engines: list[str],
            tokens_per_request: int) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    tpm = tokens_per_request * 9 // 2  # 4 requests leave half a request's tokens: a 5th is admitted, a 6th not
    proc, url = _start(tmp_path_factory.mktemp("tenants"), engines, tpm)
    try:
        yield proc, url, tpm
    finally:
        processes.stop(proc)


def _post(url: str, tenant: str) -> httpx.Response:
    return httpx.post(url + "/v1/completions", json=BODY, headers={"Authorization": f"Bearer {KEYS[tenant]}"},
                      timeout=10)  # one connection each


def _worker_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(p) for p in children if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]


def _per_worker(url: str, tenant: str, tries: int = 40) -> dict[str, dict[str, float]]:
    """worker -> status -> requests of *tenant* that worker answered (its own series)."""
    seen: dict[str, dict[str, float]] = {}
    for _ in range(tries):
        samples = [s for f in text_string_to_metric_families(
            httpx.get(url + "/metrics", params={"scope": "worker"}, timeout=10).text) for s in f.samples]
        (worker,) = [s.labels["worker"] for s in samples if s.name == "kubellm_gateway_worker"]
        statuses: dict[str, float] = {}
        for s in samples:
            if s.name == "kubellm_requests_total" and s.labels["tenant"] == tenant:
                statuses[s.labels["status"]] = statuses.get(s.labels["status"], 0.0) + s.value
        seen[worker] = statuses
        if len(seen) == 2:
            break
    return seen


def _assert_refusals(refused: list[httpx.Response], longest_wait_s: float) -> None:
    for r in refused:
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(r.headers["Retry-After"]) <= math.ceil(longest_wait_s), r.headers.get("Retry-After")


def test_the_request_limit_holds_across_workers_and_a_restarted_worker(
        gateway: tuple[subprocess.Popen[str], str, int]):
    proc, url, _ = gateway
    began = time.monotonic()
    responses = [_post(url, "limited") for _ in range(40)]
    admitted = [r for r in responses if r.status_code == 200]
    assert len(admitted) + len([r for r in responses if r.status_code == 429]) == 40
    refills = int((time.monotonic() - began) * RPM / 60)  # 0 unless the machine crawled for 15 s
    assert len(admitted) == RPM + refills  # not up to 2 x RPM
    _assert_refusals([r for r in responses if r.status_code == 429], 60 / RPM)
    per_worker = _per_worker(url, "limited")
    assert sorted(per_worker) == ["0", "1"]
    assert all(sum(s.values()) >= RPM for s in per_worker.values()), per_worker  # each alone could admit RPM

    victim = _worker_pids(proc.pid)[0]  # a restarted worker attaches to the same buckets
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (len(pids := _worker_pids(proc.pid)) == 2 and victim not in pids and len(_per_worker(url, "x")) == 2):
        assert time.monotonic() < deadline, "the killed worker was not replaced: " + "".join(processes.OUTPUT[-20:])
        time.sleep(0.3)
    after = [_post(url, "limited").status_code for _ in range(20)]
    allowed = int((time.monotonic() - began) * RPM / 60) - refills  # refilled since the burst
    assert after.count(200) <= allowed, after
    served = _per_worker(url, "limited")
    assert all(s.get("429", 0) > 0 for s in served.values()), served  # the new worker refused some too


def test_the_token_limit_holds_across_workers(gateway: tuple[subprocess.Popen[str], str, int],
                                              tokens_per_request: int):
    _, url, tpm = gateway
    responses = [_post(url, "metered") for _ in range(30)]
    statuses = [r.status_code for r in responses]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 25, statuses  # 5 in all, not 5 per worker
    used = sum(r.json()["usage"]["total_tokens"] for r in responses[:5])
    assert used == 5 * tokens_per_request > tpm
    owed = used - tpm
    _assert_refusals(responses[5:], (owed + 1) * 60 / tpm)
    assert int(responses[-1].headers["Retry-After"]) >= math.floor((owed + 1) * 60 / tpm * 0.8)  # still owing
    per_worker = _per_worker(url, "metered")
    assert sorted(per_worker) == ["0", "1"]
    assert all(sum(s.values()) >= 5 for s in per_worker.values()), per_worker  # each alone would admit 5


def test_the_table_is_an_anonymous_memfd_gone_with_the_gateway(tmp_path: Path, engines: list[str]):
    before = set(os.listdir("/dev/shm"))
    proc, url = _start(tmp_path, engines, 1000)
    try:
        holders = [proc.pid, *_worker_pids(proc.pid)]
        assert len(holders) == 3
        for pid in holders:  # the supervisor and both workers hold it; nothing named in /dev/shm
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            assert any(link.startswith(MEMFD) for link in links), (pid, links)
        assert not [n for n in os.listdir("/dev/shm") if "kubellm" in n]
        assert _post(url, "limited").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not [p for p in holders if Path(f"/proc/{p}").exists()]  # every holder gone: so is the memory
    left = set(os.listdir("/dev/shm")) - before
    assert not [n for n in left if "kubellm" in n or n.startswith("psm_")], left
