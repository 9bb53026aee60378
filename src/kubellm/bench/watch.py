"""A run whose requests all fail the same way measures nothing: ``FailureWatch`` notices, so
the run stops after a few requests instead of sending all of them. Pure: fed records."""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.bench.records import RequestRecord

UNIFORM_FAILURE_LIMIT = 10
"""Failed requests of one kind, with no success, after which a run stops."""


@dataclass
class FailureWatch:
    """Trips when the first *limit* records of a run all failed with one error kind."""

    limit: int = UNIFORM_FAILURE_LIMIT
    kind: str | None = None
    detail: str = ""
    failures: int = 0
    cleared: bool = False
    """A success or a second kind of error was seen: the run is measuring something."""

    def observe(self, record: RequestRecord) -> str | None:
        """The reason to stop, once, when this record trips the watch; else None."""
        if self.cleared:
            return None
        if record.ok or (self.kind is not None and record.error != self.kind):
            self.cleared = True
            return None
        self.kind = record.error
        self.detail = self.detail or (record.error_detail or "")
        self.failures += 1
        if self.failures < self.limit:
            return None
        self.cleared = True  # report once
        return f"the first {self.failures} requests all failed the same way ({self.kind}: {self.detail})"[:500]
