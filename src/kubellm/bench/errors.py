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
