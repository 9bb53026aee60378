"""Crash safety: a pull SIGKILLed at 20 random points, then re-run.

The model is served by hf_standin.py, a STAND-IN for the Hugging Face Hub (throttled so that
kills land during the transfer, the verification and the commit). After every kill, either
DEST does not exist, or it is complete and verified: never a partial model marked complete.
The re-run then fetches exactly the ranges the state file had not recorded as durable:
the stand-in counts the bytes it sends, and the count must equal that figure.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import time
from pathlib import Path

import pytest
from pull_testkit import HfStandin, safetensors_bytes, start_hf_standin, stop

import kubellm.pull.drivers.hf  # noqa: F401 - imported before fork(): the child must not need the import lock
from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.clock import SystemClock
from kubellm.pull.manifest import MANIFEST_NAME, read_manifest, sha256_file
from kubellm.pull.plan import remaining_bytes
from kubellm.pull.progress import JsonLinesProgress
from kubellm.pull.pull import staging_dir
from kubellm.pull.state import STATE_NAME, PullState

KILLS = 20
OPTIONS = PullOptions(transfer=TransferOptions(streams=4, range_size=256 * 1024, retries=2, backoff_initial_s=0.01))


@pytest.fixture(scope="module")
def slow_hub(tmp_path_factory: pytest.TempPathFactory) -> object:
    proc, hub = start_hf_standin(tmp_path_factory.mktemp("slowhub"), throttle=6 * 1024 * 1024)
    yield hub
    stop(proc)


def _start_child(uri: str, dest: Path, hub: HfStandin) -> tuple[int, int]:
    """Fork a pull (already-imported code: no interpreter start-up) reporting progress on a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: pull, then leave without running the parent's cleanup
        os.close(read_fd)
        code = 0
        try:
            with os.fdopen(write_fd, "w") as out:
                progress = JsonLinesProgress(out, SystemClock(), interval_s=0.01)
                pull(uri, dest, OPTIONS, SourceSettings(hf_endpoint=hub.url), progress=progress)
        except BaseException:  # noqa: BLE001 - any failure is the exit code; the parent checks the disk
            code = 1
        os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _kill_at(pid: int, read_fd: int, target: int, linger_s: float) -> str:
    """SIGKILL the child once it reports *target* bytes (plus *linger_s*), or when it exits."""
    buffer, reached_at = b"", None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if reached_at is not None and time.monotonic() >= reached_at + linger_s:
            break
        ready, _, _ = select.select([read_fd], [], [], 0.005)
        if ready:
            data = os.read(read_fd, 65536)
            if not data:
                break  # the child finished before the kill point
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if reached_at is None and any(json.loads(l).get("bytes", -1) >= target for l in lines if l):
                reached_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_fd)
    return "killed" if reached_at is not None else "exited"


def _expected_refetch(dest: Path, total_files: dict[str, int], range_size: int) -> int:
    """Bytes a correct resume must fetch: every range the sidecar does not record as durable."""
    if (dest / MANIFEST_NAME).exists():
        return 0
    state_path = staging_dir(dest) / STATE_NAME
    if not state_path.exists():
        return sum(total_files.values())
    state = PullState.model_validate_json(state_path.read_bytes())
    missing = 0
    for name, size in total_files.items():
        entry = state.files.get(name)
        if entry is None or not (staging_dir(dest) / name).exists():
            missing += size
        elif entry.sha256 is None:
            missing += remaining_bytes(size, entry.range_size, entry.done)
    return missing


def _assert_complete(dest: Path, files: dict[str, bytes]) -> None:
    manifest = read_manifest(dest)
    assert manifest is not None
    assert {e.path: e.size for e in manifest.files} == {n: len(d) for n, d in files.items()}
    for entry in manifest.files:
        assert (dest / entry.path).read_bytes() == files[entry.path]
        assert sha256_file(dest / entry.path) == entry.sha256


def test_sigkill_at_random_points_never_leaves_a_partial_model_marked_complete(slow_hub: HfStandin, tmp_path: Path) -> None:
    files = {"model-00001.safetensors": safetensors_bytes(700_000), "model-00002.safetensors": safetensors_bytes(300_000),
             "config.json": b'{"a": 1}', "tokenizer/vocab.txt": os.urandom(70_000)}  # fmt: skip
    slow_hub.add_repo("org/crash", files)
    sizes = {n: len(d) for n, d in files.items()}
    total = sum(sizes.values())
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    outcomes, refetched, saved = [], 0, 0
    for i in range(KILLS):
        dest = tmp_path / f"m{i}"
        # kill points spread over the transfer, plus some after the last byte (verify/commit)
        target = rng.randrange(0, total) if i % 4 else total
        pid, fd = _start_child("hf://org/crash", dest, slow_hub)
        outcomes.append(_kill_at(pid, fd, target, rng.uniform(0, 0.05)))
        if dest.exists():  # DEST appears only by the final rename: it must be complete and verified
            _assert_complete(dest, files)
        expected = _expected_refetch(dest, sizes, 256 * 1024)
        slow_hub.bytes_served(reset=True)
        result = pull("hf://org/crash", dest, OPTIONS, SourceSettings(hf_endpoint=slow_hub.url))
        served = slow_hub.bytes_served()
        assert served == expected, f"seed {seed}, kill {i}: re-run fetched {served}, missing was {expected}"
        assert result.bytes_received == served
        _assert_complete(dest, files)
        refetched += served
        saved += total - served
    assert outcomes.count("killed") >= KILLS // 2, f"seed {seed}: too few kills landed mid-pull: {outcomes}"
    assert saved > 0, f"seed {seed}: resume never reused a byte"
    print(f"seed={seed} outcomes={outcomes} refetched={refetched} reused={saved} of {KILLS * total}")
