"""Token-bucket arithmetic of tenant limits: pure functions of a state, the limits and the time.

A tenant's whole state is one :class:`Levels` record: when it was last brought up to date
and, for RPM and TPM, the level and the capacity that level was computed for (0: no such
limit). A bucket refills at its capacity per minute, up to its capacity. RPM takes one per
admitted request; TPM is only checked on admission (one token left) and charged after the
response with the tokens really used, so it may go negative and the tenant then waits until
it has refilled. The storage (one process's dict, or the table that ``--workers`` share in
memory, :mod:`kubellm.gateway.limits`) reads a record, calls these and writes the result.
"""

from __future__ import annotations

from typing import NamedTuple

WINDOW_S = 60.0  # the limits are per minute


class Limits(NamedTuple):
    """A tenant's configured capacities; 0: no such limit."""

    rpm: float
    tpm: float

    @property
    def any(self) -> bool:
        return self.rpm > 0 or self.tpm > 0


class Levels(NamedTuple):
    """A tenant's buckets at time *t* (capacities 0: no such limit at *t*)."""

    t: float
    rpm: float
    rpm_cap: float
    tpm: float
    tpm_cap: float


class Refusal(NamedTuple):
    """Why a request was not admitted, and when one would be."""

    what: str  # "requests" or "tokens"
    retry_after: float


def full(limits: Limits, now: float) -> Levels:
    """A tenant never seen (or idle long enough): every bucket full."""
    return Levels(now, limits.rpm, limits.rpm, limits.tpm, limits.tpm)


def _refilled(level: float, cap: float, new_cap: float, elapsed: float) -> float:
    if new_cap <= 0:
        return 0.0
    if cap <= 0:
        return new_cap  # a limit added since the last update (config reload) starts full
    return min(new_cap, level + elapsed * new_cap / WINDOW_S)


def current(levels: Levels | None, limits: Limits, now: float) -> Levels:
    """*levels* refilled up to *now* under (possibly reloaded) *limits*; a full record for None."""
    if levels is None:
        return full(limits, now)
    elapsed = max(0.0, now - levels.t)  # a clock read a moment before another process's
    return Levels(max(now, levels.t), _refilled(levels.rpm, levels.rpm_cap, limits.rpm, elapsed), limits.rpm,
                  _refilled(levels.tpm, levels.tpm_cap, limits.tpm, elapsed), limits.tpm)


def wait_for(level: float, cap: float, amount: float) -> float:
    """Seconds until a bucket of capacity *cap* at *level* holds *amount* (0 when it does now)."""
    return 0.0 if level >= amount else (amount - level) * WINDOW_S / cap


def admit(levels: Levels) -> tuple[Levels, Refusal | None]:
    """Admit one request against up-to-date *levels*: one request and one token must be left;
    takes one request. Refused: the levels unchanged and the wait for the first short bucket."""
    if levels.rpm_cap > 0 and levels.rpm < 1.0:
        return levels, Refusal("requests", wait_for(levels.rpm, levels.rpm_cap, 1.0))
    if levels.tpm_cap > 0 and levels.tpm < 1.0:
        return levels, Refusal("tokens", wait_for(levels.tpm, levels.tpm_cap, 1.0))
    return (levels._replace(rpm=levels.rpm - 1.0) if levels.rpm_cap > 0 else levels), None


def charge(levels: Levels, tokens: float) -> Levels:
    """Take the tokens a response really used from up-to-date *levels* (may go negative)."""
    return levels._replace(tpm=levels.tpm - tokens) if levels.tpm_cap > 0 else levels


def idle(levels: Levels, now: float) -> bool:
    """True when every bucket has refilled by *now*: the record then carries no state (it
    equals a fresh one), so its storage may be given to another tenant."""
    up = current(levels, Limits(levels.rpm_cap, levels.tpm_cap), now)
    return up.rpm >= up.rpm_cap and up.tpm >= up.tpm_cap
