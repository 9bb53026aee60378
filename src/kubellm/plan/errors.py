"""Errors of the plan component (the tree is drawn in the package docstring)."""

from __future__ import annotations


class PlanError(Exception):
    """Base of every error `kubellm plan` reports; the message says what to fix."""


class TraceError(PlanError):
    """A trace file that cannot be read: the message names the file and the line."""


class PlanConfigError(PlanError):
    """A plan or policy parameter out of range: the message gives its field path and range."""
