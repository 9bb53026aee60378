"""Errors of the autoscale component (the tree is drawn in the package docstring)."""

from __future__ import annotations


class AutoscaleError(Exception):
    """A scaling policy that cannot be used; the message names the field to fix."""
