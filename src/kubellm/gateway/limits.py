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
_SLOT_BYTES = 64
_FREE = bytes(16)

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
        """Read, refill, *step* and write *tenant*'s record, all under the table's lock."""
        key = self._digests.get(tenant) or self._digests.setdefault(tenant, _digest(tenant))
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = self._clock.now()
            offset, found = self._find(key, now)
            levels, refusal = step(buckets.current(found, limits, now))
            _SLOT.pack_into(self._map, offset, key, *levels)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return refusal

    def _find(self, key: bytes, now: float) -> tuple[int, Levels | None]:
        """The offset of *key*'s record and the record (None: a slot to take); under the lock."""
        offset = self._where.get(key)
        if offset is not None:
            record = _SLOT.unpack_from(self._map, offset)
            if record[0] == key:
                return offset, tuple.__new__(Levels, record[1:])  # Levels(...) costs ~5x as much
        offset, found = self._scan(key, now)
        self._where[key] = offset
        return offset, found

    def _scan(self, key: bytes, now: float) -> tuple[int, Levels | None]:
        """Look through every slot: *key*'s own, else the first free or idle one."""
        spare: int | None = None
        for offset in range(_HEADER_BYTES, _HEADER_BYTES + self.slots * _SLOT_BYTES, _SLOT_BYTES):
            name, *values = _SLOT.unpack_from(self._map, offset)
            if name == key:
                return offset, Levels(*values)
            if spare is None and (name == _FREE or buckets.idle(Levels(*values), now)):
                spare = offset
        if spare is None:
            raise TableFullError(f"the gateway's shared tenant-limits table is full ({self.slots} tenants with "
                                 "limits in use at once); retry shortly", retry_after=1.0)
        return spare, None
