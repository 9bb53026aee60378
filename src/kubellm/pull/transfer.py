"""The transfer engine shared by every driver: parallel ranges, bounded memory, retries, resume.

Each range is streamed into its place in the staging file with ``pwrite`` (so memory is
streams x chunk_size whatever the file size). A checkpoint thread periodically fdatasyncs the
files with newly finished ranges and only then records those ranges in the state file, so
the streams never wait on the disk and every recorded range is durable.
Each file is hashed in order as its ranges land, on a small pool of hasher threads (one file
per thread at a time: sha256 is serial within a file, files are independent), overlapping
the transfer; once its last range is hashed it is checked (source digest, safetensors header)
before it counts as verified.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubellm.pull.checksums import ChecksumRunner
from kubellm.pull.clock import Backoff, Clock
from kubellm.pull.errors import DiskSpaceError, IntegrityError, PullError, TransferError
from kubellm.pull.fsio import hash_region
from kubellm.pull.options import TransferOptions
from kubellm.pull.progress import Progress
from kubellm.pull.safety import check_safetensors_file
from kubellm.pull.source import RemoteFile, SourceDriver
from kubellm.pull.state import StateStore


class Cancelled(Exception):
    """Internal: another range failed, stop quietly."""


@dataclass
class FileJob:
    file: RemoteFile
    target: Path
    ranges: list[tuple[int, int]]
    pending: list[int]
    verified: bool = False
    """Fetched and checked by an earlier attempt: nothing to do."""
    left: int = field(init=False)
    fd: int = field(init=False, default=-1)
    landed: set[int] = field(init=False)
    """Ranges whose bytes are in the file (this run's and earlier runs')."""
    cursor: int = field(init=False, default=0)
    """Ranges [0, cursor) are already fed to `digest`, in order."""
    digest: Any = field(init=False, default=None)
    store_check: ChecksumRunner | None = field(init=False, default=None)
    """Fed beside `digest` when the store vouches for a checksum of the file (none for a
    whole-object sha256: `digest` is compared with it directly)."""
    hashing: bool = field(init=False, default=False)
    """A hasher task owns this file (scheduled or running): at most one at a time, so the
    digest is fed in order; set and cleared under the engine's lock."""

    def __post_init__(self) -> None:
        self.left = len(self.pending)
        self.landed = set(range(len(self.ranges))) - set(self.pending)
        self.digest = hashlib.sha256()
        check = self.file.store_checksum
        if check is not None and not (check.algorithm == "sha256" and check.kind == "full"):
            self.store_check = ChecksumRunner(check)

    @property
    def digests(self) -> list[Any]:
        return [self.digest] if self.store_check is None else [self.digest, self.store_check]


class TransferEngine:
    def __init__(
        self,
        driver: SourceDriver,
        store: StateStore,
        options: TransferOptions,
        progress: Progress,
        clock: Clock,
        backoff: Backoff | None = None,
    ) -> None:
        self._driver, self._store, self._opts = driver, store, options
        self._progress, self._clock = progress, clock
        self._backoff = backoff or Backoff(options.backoff_initial_s, options.backoff_max_s)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._unrecorded: list[tuple[FileJob, int]] = []
        self._record_lock = threading.Lock()  # one checkpoint at a time
        self.bytes_received = 0
        """Bytes read from the source by this run, failed attempts included."""

    def run(self, jobs: list[FileJob]) -> None:
        """Fetch every pending range of *jobs*, then verify each file; raise the first failure."""
        for job in jobs:
            _open_target(job)
        stop = threading.Event()
        checkpointer = threading.Thread(target=self._checkpoint_loop, args=(stop,), name="pull-checkpoint", daemon=True)
        checkpointer.start()
        try:
            todo = [j for j in jobs if not j.verified]
            with ThreadPoolExecutor(self._opts.streams, "pull") as pool, ThreadPoolExecutor(_hashers(todo), "hash") as hasher:
                futures: list[Future[None]] = []
                with self._lock:
                    for job in todo:
                        if job.left == 0:  # every range landed in an earlier run
                            self._schedule_hash(job, hasher, futures)
                for job, index in _interleaved(todo):
                    futures.append(pool.submit(self._range_task, job, index, hasher, futures))
                try:
                    self._wait(futures)
                except BaseException:  # SIGTERM (SystemExit) or Ctrl-C: stop the streams promptly
                    self._cancel.set()
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            stop.set()
            checkpointer.join()
            for job in jobs:
                os.close(job.fd)

    def _wait(self, futures: list[Future[None]]) -> None:
        seen = 0
        while seen < len(futures):  # verify futures are appended while ranges complete
            batch = futures[seen:]
            done, _ = wait(batch, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None and not isinstance(f.exception(), Cancelled)]
            if failed:
                self._cancel.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                raise failed[0].exception()  # type: ignore[misc]
            if len(done) == len(batch):
                seen += len(batch)

    def _range_task(self, job: FileJob, index: int, hasher: ThreadPoolExecutor, futures: list[Future[None]]) -> None:
        self._fetch_with_retries(job, *job.ranges[index])
        with self._lock:
            self._unrecorded.append((job, index))
            job.landed.add(index)
            job.left -= 1
            # hash in order as ranges land, so the digest trails the download instead of following it
            self._schedule_hash(job, hasher, futures)

    def _schedule_hash(self, job: FileJob, hasher: ThreadPoolExecutor, futures: list[Future[None]]) -> None:
        """Give *job* a hasher task unless it has one (call with the lock held)."""
        if not job.hashing:
            job.hashing = True
            futures.append(hasher.submit(self._hash_task, job))

    def _checkpoint_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._opts.checkpoint_interval_s):
            self._checkpoint()
        self._checkpoint()  # what finished before a failure is kept for the next attempt

    def _checkpoint(self, only: FileJob | None = None) -> None:
        """fdatasync files with finished ranges, then record those ranges (durable first)."""
        with self._record_lock:
            with self._lock:
                batch = [(j, i) for j, i in self._unrecorded if only is None or j is only]
                self._unrecorded = [(j, i) for j, i in self._unrecorded if not (only is None or j is only)]
            if not batch:
                return
            if self._opts.durable:
                for fd in {j.fd for j, _ in batch}:
                    os.fdatasync(fd)
            self._store.mark_ranges_done([(j.file.path, i) for j, i in batch])

    def _fetch_with_retries(self, job: FileJob, start: int, end: int) -> None:
        attempt = 0
        while True:
            written = 0
            try:
                written = self._copy(job, start, end)
                return
            except TransferError as exc:
                self._progress.advance(-written)
                if not exc.retryable or attempt >= self._opts.retries:
                    raise
                self._progress.event("retry", file=job.file.path, offset=start, attempt=attempt + 1, error=str(exc))
                self._clock.sleep(self._backoff.delay(attempt))
                attempt += 1

    def _copy(self, job: FileJob, start: int, end: int) -> int:
        offset = start
        chunks = self._driver.read_range(job.file, start, end)
        try:
            for chunk in chunks:
                if self._cancel.is_set():
                    raise Cancelled()
                if offset + len(chunk) > end:
                    raise IntegrityError(f"{job.file.path}: the source sent more bytes than the range asked for")
                _pwrite_all(job.fd, chunk, offset)
                offset += len(chunk)
                self._count(len(chunk))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if offset != end:
            raise TransferError(f"{job.file.path}: the connection ended after {offset - start} of {end - start} bytes")
        return offset - start

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_received += nbytes
        self._progress.advance(nbytes)

    def _hash_task(self, job: FileJob) -> None:
        """Feed the digest every contiguous landed range from the cursor; when that was the
        last range, finish the file. Hands the file back (``hashing`` off) when it runs into a
        range not yet landed: the range's landing schedules the next task."""
        while job.cursor < len(job.ranges):
            if self._cancel.is_set():
                raise Cancelled()
            with self._lock:
                if job.cursor not in job.landed:
                    job.hashing = False
                    return
                start, end = job.ranges[job.cursor]
            if os.fstat(job.fd).st_size < end:
                raise IntegrityError(f"{job.file.path}: the file shrank while hashing (below {end} bytes)")
            hash_region(job.digests, job.fd, start, end)
            job.cursor += 1
        os.fsync(job.fd)
        self._checkpoint(only=job)
        self.verify_file(job)

    def verify_file(self, job: FileJob) -> None:
        """Check the hashed file; a bad file is dropped so a re-run fetches it anew."""
        file = job.file
        try:
            digest = job.digest.hexdigest()
            if file.sha256 is not None and digest != file.sha256:
                raise IntegrityError(
                    f"{file.path}: sha256 {digest} does not match the source's {file.sha256}", _ALTERED)
            _check_store_checksum(job)
            if file.path.endswith(".safetensors"):
                check_safetensors_file(job.target, file.path)
        except PullError:
            self._store.forget_file(file.path)
            job.target.unlink(missing_ok=True)
            raise
        self._store.mark_file_verified(file.path, digest)
        self._progress.event("file_done", file=file.path, size=file.size, sha256=digest)


_ALTERED = "the bytes were altered in transit or at the source; the file was discarded"


def _check_store_checksum(job: FileJob) -> None:
    check = job.file.store_checksum
    if check is None:
        return
    got = job.store_check.result() if job.store_check is not None else job.digest.digest()
    if got != check.expected:
        raise IntegrityError(
            f"{job.file.path}: the store's {check.describe()} is {check.expected.hex()}, the bytes received give {got.hex()}",
            _ALTERED,
        )


def _hashers(jobs: list[FileJob]) -> int:
    """Hasher threads: one per file being fetched, up to the cores (sha256 runs at ~1.4 GB/s
    per core, below what many streams can download) and at most 4: 5.6 GB/s of hashing is
    more than a 25 Gb/s NIC brings, and each hasher's 16 MiB map window counts in the
    resident size (16 streams x 1 MiB + 4 x 16 MiB keeps the pull far under 256 MB)."""
    return max(1, min(len(jobs), os.cpu_count() or 1, 4))


def _interleaved(jobs: list[FileJob]) -> list[tuple[FileJob, int]]:
    """Pending ranges, one file after another in turn (a0 b0 c0 a1 b1 ...): concurrent streams
    then mostly write different files. Writers of one file queue on its inode lock, which
    perf showed as 7% of the pull's CPU spent spinning when all streams shared a file."""
    queues = [[(job, i) for i in job.pending] for job in jobs]
    return [item for turn in itertools.zip_longest(*queues) for item in turn if item is not None]


def _open_target(job: FileJob) -> None:
    job.target.parent.mkdir(parents=True, exist_ok=True)
    job.fd = os.open(job.target, os.O_RDWR | os.O_CREAT, 0o644)
    if os.fstat(job.fd).st_size != job.file.size:
        try:
            os.ftruncate(job.fd, job.file.size)
        except OSError as exc:
            os.close(job.fd)
            raise _disk_error(exc, job.target) from exc


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.pwrite(fd, view, offset)
        except OSError as exc:
            raise _disk_error(exc, None) from exc
        view, offset = view[n:], offset + n


def _disk_error(exc: OSError, path: Path | None) -> PullError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskSpaceError(
            f"the disk filled up while writing{f' {path}' if path else ''}",
            "free space or give the cache volume more capacity, then run the pull again (it resumes)",
        )
    return PullError(f"cannot write the destination: {exc}")
