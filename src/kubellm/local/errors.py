"""Errors of local mode (the tree is drawn in the package docstring)."""

from __future__ import annotations


class LocalError(Exception):
    """Local mode cannot go on; the message is for the user and says what to do."""


class PrerequisiteError(LocalError):
    """The engine the spec asks for is not installed here (the message names what to install)."""


class ModelNotAvailableError(LocalError):
    """The model's files are not on this machine and cannot be pulled."""


class EngineStartError(LocalError):
    """A replica exited, or did not answer its readiness check in time."""
