"""The transfer engine and pull() against an in-memory driver: the driver seam is the boundary
(as httpx's MockTransport), the engine, state file, staging and commit are all real."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull, transfer
from kubellm.pull.clock import Backoff
from kubellm.pull.errors import CredentialsError, StallError, TransferError
from kubellm.pull.fsio import hash_region
from kubellm.pull.progress import JsonLinesProgress, progress_record
from kubellm.pull.pull import staging_dir
from kubellm.pull.source import Listing, RemoteFile
from kubellm.pull.state import STATE_NAME, PullState, StateStore


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MemoryDriver:
    """Serves files from memory; *faults* maps a range start to errors raised on successive reads."""

    def __init__(self, files: dict[str, bytes], faults: dict[int, list[Exception]] | None = None, short: bool = False) -> None:
        self.files, self.faults, self.short, self.reads = files, faults or {}, short, 0

    def list_files(self) -> Listing:
        return Listing(tuple(RemoteFile(n, len(d), hashlib.sha256(d).hexdigest(), "v1", n) for n, d in self.files.items()), "rev1")

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        self.reads += 1
        pending = self.faults.get(start)
        if pending:
            raise pending.pop(0)
        data = self.files[file.locator][start:end]
        if self.short:
            self.short = False
            data = data[: len(data) // 2]
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    def close(self) -> None:
        pass


OPTS = TransferOptions(streams=3, range_size=64 * 1024, retries=2, backoff_initial_s=1.0, backoff_max_s=8.0)


def _pull(driver: MemoryDriver, dest: Path, clock: FakeClock | None = None, transfer: TransferOptions = OPTS) -> object:
    return pull("/fake/source", dest, PullOptions(transfer=transfer), SourceSettings(), driver_factory=lambda *_: driver, clock=clock or FakeClock())


def test_retryable_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    data = random.randbytes(300_000)
    driver = MemoryDriver({"a.gguf": data}, faults={65536: [TransferError("reset"), StallError("stalled")]})
    clock = FakeClock()
    _pull(driver, tmp_path / "m", clock)
    assert (tmp_path / "m/a.gguf").read_bytes() == data
    assert len(clock.sleeps) == 2 and 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0


def test_retries_run_out(tmp_path: Path) -> None:
    driver = MemoryDriver({"a.gguf": bytes(100_000)}, faults={0: [TransferError("x")] * 3})
    with pytest.raises(TransferError):
        _pull(driver, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_short_body_is_detected_and_retried(tmp_path: Path) -> None:
    data = random.randbytes(100_000)
    _pull(MemoryDriver({"a.gguf": data}, short=True), tmp_path / "m")
    assert (tmp_path / "m/a.gguf").read_bytes() == data


def test_non_retryable_errors_fail_at_once(tmp_path: Path) -> None:
    driver = MemoryDriver({"a.gguf": bytes(200_000)}, faults={0: [CredentialsError("denied")]})
    clock = FakeClock()
    with pytest.raises(CredentialsError):
        _pull(driver, tmp_path / "m", clock)
    assert clock.sleeps == []


def test_ranges_finished_before_a_failure_are_kept_for_the_next_run(tmp_path: Path) -> None:
    data = random.randbytes(640 * 1024)
    driver = MemoryDriver({"a.gguf": data}, faults={9 * 65536: [TransferError("x")] * 3})
    with pytest.raises(TransferError):
        _pull(driver, tmp_path / "m", transfer=OPTS.model_copy(update={"streams": 1}))
    state = PullState.model_validate_json((staging_dir(tmp_path / "m") / STATE_NAME).read_bytes())
    assert sorted(state.files["a.gguf"].done) == list(range(9))
    again = MemoryDriver({"a.gguf": data})
    _pull(again, tmp_path / "m")
    assert again.reads == 1 and (tmp_path / "m/a.gguf").read_bytes() == data


class SlowHashes:
    """Wraps the engine's hash_region: slows each call a little (so overlaps can show) and
    records how many calls ran at once, in all and per file (by descriptor)."""

    def __init__(self, real: object) -> None:
        self.real, self.lock = real, threading.Lock()
        self.running: dict[int, int] = {}
        self.most_at_once, self.most_per_file = 0, 0

    def __call__(self, digests: list[object], fd: int, start: int, end: int) -> None:
        with self.lock:
            self.running[fd] = self.running.get(fd, 0) + 1
            self.most_per_file = max(self.most_per_file, self.running[fd])
            self.most_at_once = max(self.most_at_once, sum(self.running.values()))
        time.sleep(0.005)
        self.real(digests, fd, start, end)  # type: ignore[operator]
        with self.lock:
            self.running[fd] -= 1


def test_files_are_hashed_in_parallel_each_by_one_thread_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several files hash at once (sha256 is serial per file, so one hasher for all capped the
    pull at one core's hashing rate), yet no file ever has two hashers: every digest matches."""
    files = {f"shard-{i}.gguf": random.randbytes(10 * 65536 + i) for i in range(6)}
    slow = SlowHashes(hash_region)
    monkeypatch.setattr(transfer, "hash_region", slow)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    _pull(MemoryDriver(files), tmp_path / "m", transfer=OPTS.model_copy(update={"streams": 6}))
    for name, data in files.items():
        assert (tmp_path / "m" / name).read_bytes() == data
    assert slow.most_per_file == 1
    assert slow.most_at_once > 1


def test_state_is_reset_when_the_remote_file_changed(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path, "src", "rev")
    store.file_state(RemoteFile("a", 10, version="v1"), 4)
    store.mark_ranges_done([("a", 0), ("a", 1)])
    reopened = StateStore.open(tmp_path, "src", "rev")
    assert reopened.file_state(RemoteFile("a", 10, version="v1"), 4).done == [0, 1]
    assert reopened.file_state(RemoteFile("a", 10, version="v2"), 4).done == []
    assert StateStore.open(tmp_path, "src", "other-rev").file_state(RemoteFile("a", 10, version="v1"), 4).done == []


def test_backoff_is_capped_full_jitter() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    assert all(0 <= backoff.delay(n) <= min(4.0, 0.5 * 2**n) for n in range(40))


def test_progress_lines_carry_bytes_rate_and_eta() -> None:
    assert progress_record(1000, 250, 50.0) == {
        "event": "progress", "bytes": 250, "total": 1000, "percent": 25.0, "rate_bytes_per_s": 50, "eta_s": 15.0,
    }  # fmt: skip
    assert progress_record(1000, 0, 0.0)["eta_s"] is None
    out = io.StringIO()
    progress = JsonLinesProgress(out, FakeClock(), interval_s=3600)
    progress.start(100, 10)
    progress.advance(90)
    progress.finish()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"event": "start", "total": 100, "already_present": 10}
    assert lines[-1]["bytes"] == 100 and lines[-1]["percent"] == 100.0


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [(errno.EROFS, "PullError", "cannot write /cache/m: Read-only"), (errno.EACCES, "PullError", "cannot write /cache/m: Permission"),
     (errno.ENOSPC, "DiskSpaceError", "the disk filled up at /cache/m")],
)  # fmt: skip
def test_destination_file_system_errors_become_pull_errors(code: int, kind: str, words: str) -> None:
    """So the CLI prints its JSON error event (the loader Job's log) and the exit code of a pull."""
    from kubellm.pull.pull import _file_system_error

    error = _file_system_error(OSError(code, os.strerror(code), "/cache/m"), Path("/cache/m"))
    assert type(error).__name__ == kind and str(error).startswith(words)
