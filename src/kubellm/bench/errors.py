"""Exception tree of kubellm.bench (drawn in the package docstring)."""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error kubellm.bench raises on purpose; the message says what to fix."""


class WorkloadError(BenchError):
    """A workload option or dataset file that cannot be used."""


class ResultFileError(BenchError):
    """A result JSON file that cannot be read back (missing, not JSON, wrong shape)."""


class ThresholdError(BenchError):
    """A threshold or SLO option that makes no sense (negative, or a share outside [0, 1])."""


class TargetError(BenchError):
    """The target cannot be benchmarked: nothing answers, it refuses, or the model is not served."""

    exit_code = 1


class UniformFailureError(BenchError):
    """Every request of a run failed the same way, so the run stopped early."""

    exit_code = 1

    def __init__(self, message: str, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial
        """The BenchResult of the runs that completed before this one, if any."""
