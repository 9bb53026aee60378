"""`pull(uri, dest)`: list, plan, transfer, verify, then commit atomically with a manifest.

Layout while pulling (the staging dir sits beside DEST, on the same file system)::

    <parent>/.<name>.kubellm-partial/       files being written, plus the state sidecar
    <parent>/<name>/                        appears only by rename, complete, with
    <parent>/<name>/.kubellm-manifest.json  every file's size and sha256

DEST exists only when complete, so nothing half-written can be loaded as a model.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from kubellm.pull.archive import unpack
from kubellm.pull.clock import Clock, SystemClock
from kubellm.pull.errors import DiskSpaceError, PullError, PullInputError
from kubellm.pull.fsio import fsync_dir
from kubellm.pull.manifest import (
    MANIFEST_NAME, Manifest, ManifestEntry, Verification, read_manifest, sha256_file, verification_of, verify_tree,
    write_manifest,
)  # fmt: skip
from kubellm.pull.options import PullOptions, SourceSettings
from kubellm.pull.plan import pending_ranges, remaining_bytes, select_files, split_ranges
from kubellm.pull.progress import NullProgress, Progress
from kubellm.pull.safety import refuse_pickles
from kubellm.pull.source import Listing, RemoteFile, SourceDriver
from kubellm.pull.state import STATE_NAME, StateStore
from kubellm.pull.transfer import FileJob, TransferEngine
from kubellm.pull.uri import SourceUri, parse_source

ARCHIVE_DIR = ".kubellm-archives"
DriverFactory = Callable[[SourceUri, PullOptions, SourceSettings], SourceDriver]


@dataclass(frozen=True)
class PullResult:
    status: Literal["pulled", "verified"]
    dest: Path
    files: int
    total_bytes: int
    bytes_received: int
    """Bytes read from the source by this run (0 when the cache was already complete)."""
    revision: str | None


def staging_dir(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.kubellm-partial"


def pull(
    uri: str,
    dest: Path,
    options: PullOptions,
    settings: SourceSettings,
    *,
    driver_factory: DriverFactory | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> PullResult:
    """Make *dest* a complete, verified copy of the model at *uri* (resuming earlier attempts)."""
    source = parse_source(uri, allow_http=options.allow_http)
    dest = dest.absolute()
    try:
        done = _verify_existing(dest, uri, options)
        if done is not None:
            return done
        factory = driver_factory or _default_factory
        driver = factory(source, options, settings)
        try:
            return _pull_into(driver, uri, dest, options, progress or NullProgress(), clock or SystemClock())
        finally:
            driver.close()
    except OSError as exc:  # the destination's file system: read-only, no permission, full
        raise _file_system_error(exc, dest) from exc


def _file_system_error(exc: OSError, dest: Path) -> PullError:
    where = exc.filename or dest
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskSpaceError(f"the disk filled up at {where}", "free space or give the cache volume more capacity, then pull again (it resumes)")
    return PullError(
        f"cannot write {where}: {exc.strerror or exc}",
        "choose a destination this user can write (in a pod: the cache volume, writable by the pod's fsGroup)",
    )


def _default_factory(source: SourceUri, options: PullOptions, settings: SourceSettings) -> SourceDriver:
    from kubellm.pull.drivers import build_driver

    return build_driver(source, options, settings)


def _verify_existing(dest: Path, uri: str, options: PullOptions) -> PullResult | None:
    if not dest.exists():
        return None
    if not dest.is_dir():
        raise PullInputError(f"destination {dest} exists and is not a directory", "choose another destination")
    manifest = read_manifest(dest)
    if manifest is None:
        if any(dest.iterdir()):
            raise PullInputError(
                f"destination {dest} is not empty and holds no kubellm manifest",
                "remove it or choose another destination (kubellm never mixes into foreign files)",
            )
        return None
    if manifest.source != uri:
        raise PullInputError(f"destination {dest} holds {manifest.source}, not {uri}", "choose another destination")
    verify_tree(dest, manifest, full=options.verify == "full")
    return PullResult("verified", dest, len(manifest.files), manifest.total_bytes, 0, manifest.revision)


def _pull_into(driver: SourceDriver, uri: str, dest: Path, options: PullOptions, progress: Progress, clock: Clock) -> PullResult:
    listing = driver.list_files()
    files = select_files(listing.files, options.allow_patterns, options.ignore_patterns)
    if not options.allow_pickle:
        refuse_pickles(f.path for f in files)
    for note in listing.notes:
        progress.event("warning", message=note)
    staging = staging_dir(dest)
    staging.mkdir(parents=True, exist_ok=True)
    store = StateStore.open(staging, uri, listing.revision)
    jobs = [_plan_job(staging, f, store, options) for f in files]
    _prune(staging, {j.target for j in jobs})
    _check_disk_space(staging, jobs)
    total = sum(f.size for f in files)
    todo = sum(remaining_bytes(j.file.size, _range_size(j), _done(j)) for j in jobs)
    progress.start(total, total - todo)
    engine = TransferEngine(driver, store, options.transfer, progress, clock)
    try:
        engine.run(jobs)
    finally:
        progress.finish()
    entries = _entries(staging, jobs, store)
    _commit(staging, dest, Manifest(source=uri, revision=listing.revision, files=tuple(entries), completed_at=datetime.now(UTC)))
    return PullResult("pulled", dest, len(entries), sum(e.size for e in entries), engine.bytes_received, listing.revision)


def _plan_job(staging: Path, file: RemoteFile, store: StateStore, options: PullOptions) -> FileJob:
    # Without Range support the whole file is one range: it is recorded only once complete,
    # so an interrupted download restarts from zero.
    range_size = options.transfer.range_size if file.ranged else max(file.size, 1)
    state = store.file_state(file, range_size)
    target = staging / ARCHIVE_DIR / file.path if file.archive else staging / file.path
    if not target.exists() and state.done:  # sidecar survived but the bytes did not
        store.forget_file(file.path)
        state = store.file_state(file, range_size)
    ranges = split_ranges(file.size, state.range_size)
    verified = state.sha256 is not None
    pending = [] if verified else pending_ranges(file.size, state.range_size, state.done)
    return FileJob(file, target, ranges, pending, verified=verified)


def _prune(staging: Path, keep: set[Path]) -> None:
    """Drop files left by an earlier attempt that the current listing no longer names."""
    for path in staging.rglob("*"):
        if path.is_file() and path not in keep and path.name not in (STATE_NAME, STATE_NAME + ".tmp"):
            path.unlink()


def _range_size(job: FileJob) -> int:
    return job.ranges[0][1] - job.ranges[0][0] if job.ranges else 1


def _done(job: FileJob) -> list[int]:
    pending = set(job.pending)
    return [i for i in range(len(job.ranges)) if i not in pending]


def _check_disk_space(staging: Path, jobs: list[FileJob]) -> None:
    needed = sum(remaining_bytes(j.file.size, _range_size(j), _done(j)) for j in jobs)
    needed += sum(j.file.size for j in jobs if j.file.archive)  # unpacked copy beside the archive
    free = shutil.disk_usage(staging).free
    # Sparse pre-sized files already on disk are counted as needing space again: a safe overestimate.
    if needed > free:
        raise DiskSpaceError(
            f"not enough free space at {staging.parent}: {needed} bytes needed, {free} free",
            "free space or give the cache volume more capacity",
        )


def _entries(staging: Path, jobs: list[FileJob], store: StateStore) -> list[ManifestEntry]:
    entries: list[ManifestEntry] = []
    for job in jobs:
        state = store.file_state(job.file, 1)
        assert state.sha256 is not None, job.file.path  # the engine verified every file
        verification = verification_of(job.file)
        if job.file.archive:
            unpacked = verification_of(job.file, f"unpacked from {job.file.path}, which was checked: ")
            entries += _unpack_archive(staging, job.target, unpacked)
        else:
            entries.append(ManifestEntry(path=job.file.path, size=job.file.size, sha256=state.sha256, verification=verification))
    return sorted(entries, key=lambda e: e.path)


def _unpack_archive(staging: Path, archive: Path, verification: Verification) -> list[ManifestEntry]:
    names = unpack(archive, staging)
    entries = []
    for name in names:
        path = staging / name
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
        entries.append(ManifestEntry(path=name, size=path.stat().st_size, sha256=sha256_file(path), verification=verification))
    return entries


def _commit(staging: Path, dest: Path, manifest: Manifest) -> None:
    """Manifest last inside staging, then one rename makes the complete model appear."""
    shutil.rmtree(staging / ARCHIVE_DIR, ignore_errors=True)
    write_manifest(staging, manifest)
    (staging / STATE_NAME).unlink(missing_ok=True)
    for directory in sorted({(staging / e.path).parent for e in manifest.files}, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(directory)
    if dest.exists():
        dest.rmdir()  # an empty directory (checked before the pull started)
    os.rename(staging, dest)
    fsync_dir(dest.parent)


__all__ = ["MANIFEST_NAME", "PullResult", "Listing", "pull", "staging_dir"]
