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


# The functions below run for every request: they unpack records and build the new one with
# tuple.__new__ (a NamedTuple's own constructor is a Python function, ~5x the cost).
_new = tuple.__new__


def full(limits: Limits, now: float) -> Levels:
    """A tenant never seen (or idle long enough): every bucket full."""
    rpm, tpm = limits
    return _new(Levels, (now, rpm, rpm, tpm, tpm))


def _refilled(level: float, cap: float, new_cap: float, elapsed: float) -> float:
    if new_cap <= 0:
        return 0.0
    if cap <= 0:
        return new_cap  # a limit added since the last update (config reload) starts full
    level += elapsed * new_cap / WINDOW_S
    return new_cap if level > new_cap else level


def current(levels: Levels | None, limits: Limits, now: float) -> Levels:
    """*levels* refilled up to *now* under (possibly reloaded) *limits*; a full record for None."""
    if levels is None:
        return full(limits, now)
    t, rpm, rpm_cap, tpm, tpm_cap = levels
    new_rpm, new_tpm = limits
    if now < t:  # a clock read a moment before another process's
        now = t
    elapsed = now - t
    return _new(Levels, (now, _refilled(rpm, rpm_cap, new_rpm, elapsed), new_rpm,
                         _refilled(tpm, tpm_cap, new_tpm, elapsed), new_tpm))


def wait_for(level: float, cap: float, amount: float) -> float:
    """Seconds until a bucket of capacity *cap* at *level* holds *amount* (0 when it does now)."""
    return 0.0 if level >= amount else (amount - level) * WINDOW_S / cap


def admit(levels: Levels) -> tuple[Levels, Refusal | None]:
    """Admit one request against up-to-date *levels*: one request and one token must be left;
    takes one request. Refused: the levels unchanged and the wait for the first short bucket."""
    t, rpm, rpm_cap, tpm, tpm_cap = levels
    if rpm_cap > 0 and rpm < 1.0:
        return levels, Refusal("requests", wait_for(rpm, rpm_cap, 1.0))
    if tpm_cap > 0 and tpm < 1.0:
        return levels, Refusal("tokens", wait_for(tpm, tpm_cap, 1.0))
    if rpm_cap <= 0:
        return levels, None
    return _new(Levels, (t, rpm - 1.0, rpm_cap, tpm, tpm_cap)), None


def charge(levels: Levels, tokens: float) -> Levels:
    """Take the tokens a response really used from up-to-date *levels* (may go negative)."""
    t, rpm, rpm_cap, tpm, tpm_cap = levels
    return _new(Levels, (t, rpm, rpm_cap, tpm - tokens, tpm_cap)) if tpm_cap > 0 else levels


def idle(levels: Levels, now: float) -> bool:
    """True when every bucket has refilled by *now*: the record then carries no state (it
    equals a fresh one), so its storage may be given to another tenant."""
    up = current(levels, Limits(levels.rpm_cap, levels.tpm_cap), now)
    return up.rpm >= up.rpm_cap and up.tpm >= up.tpm_cap
