"""Where tenants' limit buckets live: one process's dict, or a table all ``--workers`` share.

:class:`LocalLimits` is the single-process path (no locking, no shared memory).
:class:`SharedLimits` is a worker's view of one table of per-tenant records in memory the
supervisor made (:class:`SharedTable`): every worker admits and charges against the same
buckets, so a tenant's limits hold for the whole gateway whatever worker a connection
lands on.

The table is an anonymous ``memfd`` (no name in ``/dev/shm``: nothing to unlink, nothing
left behind even when the supervisor is SIGKILLed; the memory goes with the last process
that holds it). The supervisor passes its descriptor to each worker it spawns, restarted
ones too. Each access takes an exclusive ``flock`` on the table (each worker opens its own
file description: ``flock`` excludes between descriptions), reads the tenant's record,
applies :mod:`kubellm.gateway.buckets` and writes it back. The kernel drops the lock of a
process that dies holding it, so a SIGKILLed worker cannot wedge the others.

Placing a tenant (one this view has not placed yet, or whose slot was taken) is looked up
before the lock, in a snapshot of the table: the tenant's slot, else a free or an idle one.
Under the lock only that slot is checked, with one search of the table's bytes for the
tenant's digest, so that two workers placing one new tenant cannot make two records of it; a
spare slot taken meanwhile means another look, and after a few the look runs under the lock.

Records are keyed by a 16-byte BLAKE2b digest of the tenant's name, so a config reload
keeps the buckets of the tenants it keeps; a record whose buckets have all refilled carries
no state and its slot may be taken by another tenant (removed tenants' slots come back).
With every slot held by a tenant that is not idle, ``admit`` refuses (429,
:class:`TableFullError`) but ``charge`` never does: it runs after the response, so a tenant whose slot was taken
since its admit has that charge dropped, counted in ``dropped_charges`` and logged once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
from collections.abc import Callable
from multiprocessing import reduction
from typing import Protocol

from kubellm.gateway import buckets
from kubellm.gateway.buckets import Levels, Limits, Refusal
from kubellm.gateway.clock import Clock, MonotonicClock
from kubellm.gateway.errors import RateLimitedError

log = logging.getLogger("kubellm.gateway.limits")

SLOTS = 4096  # tenants with limits that are not idle at the same time; 64 bytes each (256 KiB)
_MAGIC = b"kllmlim1"
_HEADER = struct.Struct("<8sI")  # magic, slot count; the slots start at _HEADER_BYTES
_HEADER_BYTES = 64
_SLOT = struct.Struct("<16s5d")  # name digest (zeros: free), Levels
_SLOT_BYTES = 64  # divides _HEADER_BYTES: a slot starts at a multiple of it, in the table and in a snapshot
_ROW = struct.Struct("<16s5d8x")  # a slot with its padding: iterates over a snapshot's slots
_FREE = bytes(16)
_FREE_SLOT = bytes(_SLOT_BYTES)  # a slot never taken (a taken one keeps a digest: never all zeros)
_LOOKS = 3  # looks for a spare slot without the lock, before one under it
_new = tuple.__new__  # Levels(...) costs ~5x as much

Step = Callable[[Levels], tuple[Levels, Refusal | None]]  # what admit or charge does to a refilled record


class LimitStore(Protocol):
    """Admits and charges tenants (by name) against their buckets; atomic per call."""

    def admit(self, tenant: str, limits: Limits) -> Refusal | None: ...

    def charge(self, tenant: str, limits: Limits, tokens: float) -> None: ...


class LocalLimits:
    """The buckets of a gateway that is one process: a dict, keyed by tenant name."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._levels: dict[str, Levels] = {}

    def admit(self, tenant: str, limits: Limits) -> Refusal | None:
        return self._update(tenant, limits, buckets.admit)

    def charge(self, tenant: str, limits: Limits, tokens: float) -> None:
        self._update(tenant, limits, lambda levels: (buckets.charge(levels, tokens), None))

    def _update(self, tenant: str, limits: Limits, step: Step) -> Refusal | None:
        levels, refusal = step(buckets.current(self._levels.get(tenant), limits, self._clock.now()))
        self._levels[tenant] = levels
        return refusal


class TableError(Exception):
    """The descriptor a worker was given is not a limits table (a wiring bug, not user input)."""


class TableFullError(RateLimitedError):
    """Every slot of the shared table holds a tenant that is not idle: a new tenant is refused."""


class TableHandle:
    """A table's descriptor, passed to a spawned worker (it arrives as the child's own fd)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[object, tuple[object]]:
        return _rebuild_handle, (reduction.DupFd(self.fd),)


def _rebuild_handle(dup: object) -> TableHandle:
    return TableHandle(dup.detach())  # type: ignore[attr-defined]  # multiprocessing's _DupFd


class SharedTable:
    """The supervisor's table: created once, kept while it lives, handed to every worker."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self.fd = os.memfd_create("kubellm-tenant-limits", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, _HEADER_BYTES + slots * _SLOT_BYTES)  # zeros: every slot free
        os.pwrite(self.fd, _HEADER.pack(_MAGIC, slots), 0)

    def handle(self) -> TableHandle:
        return TableHandle(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _digest(tenant: str) -> bytes:
    return hashlib.blake2b(tenant.encode("utf-8"), digest_size=16).digest()


class SharedLimits:
    """One worker's view of a :class:`SharedTable`."""

    def __init__(self, fd: int, clock: Clock | None = None) -> None:
        """Attach through a file description of this view's own (``flock`` is per description);
        *fd* stays the caller's. *clock* must be the same for every process: CLOCK_MONOTONIC."""
        self._fd = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        self._map = mmap.mmap(self._fd, 0)
        magic, self.slots = _HEADER.unpack_from(self._map, 0)
        if magic != _MAGIC or len(self._map) != _HEADER_BYTES + self.slots * _SLOT_BYTES:
            self.close()
            raise TableError(f"file descriptor {fd} is not a kubellm tenant-limits table")
        self._clock = clock or MonotonicClock()
        self._digests: dict[str, bytes] = {}
        self._where: dict[bytes, int] = {}  # digest -> offset, as last found (checked at each use)
        self.dropped_charges = 0
        """Charges dropped because the table was full (the tenant's slot taken since its admit)."""

    @classmethod
    def attach(cls, handle: TableHandle, clock: Clock | None = None) -> "SharedLimits":
        """A worker's view from the handle it was spawned with (whose descriptor it then closes)."""
        try:
            return cls(handle.fd, clock)
        finally:
            os.close(handle.fd)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def admit(self, tenant: str, limits: Limits) -> Refusal | None:
        return self._update(tenant, limits, buckets.admit)

    def charge(self, tenant: str, limits: Limits, tokens: float) -> None:
        """Never refuses (the response is already served): on a full table the charge is dropped."""
        try:
            self._update(tenant, limits, lambda levels: (buckets.charge(levels, tokens), None))
        except TableFullError:
            self._drop(tenant, tokens)

    def _drop(self, tenant: str, tokens: float) -> None:
        if not self.dropped_charges:
            log.warning("tenant %r: %g tokens not charged, the shared tenant-limits table is full (%d tenants with "
                        "limits in use at once); further dropped charges are only counted", tenant, tokens, self.slots)
        self.dropped_charges += 1

    def _update(self, tenant: str, limits: Limits, step: Step) -> Refusal | None:
        """Read, refill, *step* and write *tenant*'s record under the table's lock; a slot for a
        tenant not placed yet is looked for before taking it (:meth:`_look`), and only checked under it."""
        key = self._digests.get(tenant) or self._digests.setdefault(tenant, _digest(tenant))
        cached = self._where.get(key)
        hint = cached if cached is not None else self._look(key, self._clock.now())
        looks_left = _LOOKS
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = self._clock.now()
                claim = self._claim(key, hint if looks_left else self._look(key, now), now)
                if claim is not None:
                    offset, found = claim
                    levels, refusal = step(buckets.current(found, limits, now))
                    _SLOT.pack_into(self._map, offset, key, *levels)
                    if offset != cached:
                        self._where[key] = offset
                    return refusal
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            looks_left -= 1  # the spare slot was taken meanwhile: look again (the last look under the lock)
            hint = self._look(key, self._clock.now())

    def _claim(self, key: bytes, hint: int | None, now: float) -> tuple[int, Levels | None] | None:
        """Under the lock: *key*'s record (its offset and levels), else the slot at *hint* if it is
        still free or idle (levels None: a slot to take); None: that slot was taken, look again.
        *hint* None: the look found no spare slot, the table is full."""
        if hint is not None:
            record = _SLOT.unpack_from(self._map, hint)
            if record[0] == key:
                return hint, _new(Levels, record[1:])
        offset = _aligned_find(self._map, key, _HEADER_BYTES)  # placed since the look, by another worker
        if offset is not None:
            return offset, _new(Levels, _SLOT.unpack_from(self._map, offset)[1:])
        if hint is None:
            raise TableFullError(f"the gateway's shared tenant-limits table is full ({self.slots} tenants with "
                                 "limits in use at once); retry shortly", retry_after=1.0)
        if record[0] == _FREE or buckets.idle(_new(Levels, record[1:]), now):
            return hint, None
        return None

    def _look(self, key: bytes, now: float) -> int | None:
        """Where *key*'s record is, else the first free slot, else the first idle one, in a
        snapshot of the table (None: every slot in use); a hint that :meth:`_claim` checks."""
        offset = _aligned_find(self._map, key, _HEADER_BYTES)
        if offset is not None:
            return offset
        slots = self._map[_HEADER_BYTES:]
        free = _aligned_find(slots, _FREE_SLOT, 0)
        if free is not None:
            return _HEADER_BYTES + free
        for index, (_, *values) in enumerate(_ROW.iter_unpack(slots)):
            if buckets.idle(_new(Levels, values), now):
                return _HEADER_BYTES + index * _SLOT_BYTES
        return None


def _aligned_find(data: bytes | mmap.mmap, needle: bytes, start: int) -> int | None:
    """The first offset from *start* at which a slot begins with *needle*: a search in C (a match
    that straddles fields is skipped)."""
    at = data.find(needle, start)
    while at != -1 and at % _SLOT_BYTES:
        at = data.find(needle, at + 1)
    return None if at == -1 else at
