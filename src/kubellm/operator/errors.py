"""Errors of the operator component.

Exception tree::

    OperatorError               base of everything the operator raises on purpose
    ├── RenderFailedError       the renderer raised (a spec the renderer cannot handle)
    ├── UnmanagedKindError      the renderer produced a kind the operator does not manage
    ├── MissingApiError         a kind's API (usually a CRD: KEDA, LWS...) is not served
    ├── KubeApiError            the API server refused a request (status code + message)
    │   └── ImmutableFieldError a change needs the object re-created (Job templates...)
    └── LeaseError              leader election failed or the lease was lost

lightkube's ``ApiError`` and httpx's transport errors are mapped to ``KubeApiError`` in
``kube.py`` and nowhere else.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base of the operator's errors; the message is meant for the user."""


class RenderFailedError(OperatorError):
    """The renderer raised something other than a SpecError."""


class UnmanagedKindError(OperatorError):
    def __init__(self, api_version: str, kind: str) -> None:
        self.api_version, self.kind = api_version, kind
        super().__init__(f"the renderer produced {kind} ({api_version}), which the operator does not manage")


class MissingApiError(OperatorError):
    def __init__(self, api_version: str, kind: str, hint: str) -> None:
        self.api_version, self.kind = api_version, kind
        super().__init__(f"{kind} ({api_version}) is not served by this cluster; {hint}")


class KubeApiError(OperatorError):
    def __init__(self, status: int, message: str, *, reason: str = "") -> None:
        self.status, self.reason = status, reason
        super().__init__(f"API server answered {status}{' ' + reason if reason else ''}: {message}")


class ImmutableFieldError(KubeApiError):
    """422 for a field that cannot change in place."""


class LeaseError(OperatorError):
    """Leader election could not proceed."""
