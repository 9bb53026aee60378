"""Leader election on a coordination.k8s.io Lease, so two operator replicas never fight.

The decision (may I take this lease now?) is a pure function; ``LeaderElector`` does the
I/O with optimistic concurrency: every write carries the resourceVersion it read, so of two
candidates writing at once one gets 409 and tries again later. A replica restarted under the
same identity (a pod keeps its name across container restarts) takes its lease back at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubellm.operator.errors import KubeApiError, LeaseError
from kubellm.operator.kube import LEASE_KIND, Kube

_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _parse(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    for fmt in (_MICRO, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(stamp, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


def may_take(spec: dict[str, Any], identity: str, now: dt.datetime) -> bool:
    """True when *identity* holds the lease, nobody does, or the holder stopped renewing."""
    holder = spec.get("holderIdentity")
    if not holder or holder == identity:
        return True
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = dt.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 15))
    return renewed is None or now > renewed + duration


def lease_spec(previous: dict[str, Any], identity: str, duration: int, now: dt.datetime) -> dict[str, Any]:
    """The spec to write when *identity* takes or renews the lease."""
    stamp = now.strftime(_MICRO)
    ours = previous.get("holderIdentity") == identity
    transitions = int(previous.get("leaseTransitions") or 0) + (0 if ours or not previous.get("holderIdentity") else 1)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": previous.get("acquireTime") if ours else stamp,
        "renewTime": stamp,
        "leaseTransitions": transitions,
    }


@dataclass
class LeaderElector:
    kube: Kube
    name: str
    namespace: str
    identity: str
    duration: int = 15
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the lease."""
        lease = await self.kube.get(LEASE_KIND, self.name, self.namespace)
        now = self.clock()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": lease_spec({}, self.identity, self.duration, now),
            }
            return await self._write(self.kube.create, body)
        spec = lease.get("spec") or {}
        if not may_take(spec, self.identity, now):
            return False
        lease["spec"] = lease_spec(spec, self.identity, self.duration, now)
        return await self._write(self.kube.replace, lease)

    async def _write(self, write: Callable[..., Any], body: dict[str, Any]) -> bool:
        try:
            await write(LEASE_KIND, body)
        except KubeApiError as exc:
            if exc.status in (409, 422):  # someone else wrote first
                return False
            raise
        return True

    async def release(self) -> None:
        """Give the lease up on a clean shutdown, so a successor need not wait for it to expire."""
        lease = await self.kube.get(LEASE_KIND, self.name, self.namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**lease["spec"], "holderIdentity": "", "renewTime": None}
        await self._write(self.kube.replace, lease)

    async def acquire(self, poll: float = 1.0) -> None:
        """Wait until this replica leads."""
        while not await self.try_acquire():
            await asyncio.sleep(poll)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renew until cancelled; set *lost* and raise LeaseError if renewal fails for two
        thirds of a term."""
        interval = max(self.duration / 3, 0.5)
        # Give up at two thirds of the term (client-go's renew deadline): the replica stops
        # leading before a successor may take the expired lease, never at the same moment.
        deadline = self.duration * 2 / 3
        last_ok = self.clock()
        while True:
            await asyncio.sleep(interval)
            try:
                ok = await self.try_acquire()
            except KubeApiError:
                ok = False
            now = self.clock()
            if ok:
                last_ok = now
            elif (now - last_ok).total_seconds() >= deadline:
                lost.set()
                raise LeaseError(f"lost the lease {self.namespace}/{self.name}; stopping so another replica can lead")
