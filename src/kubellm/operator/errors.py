"""Errors of the operator component.

Exception tree::

    OperatorError                 base of everything the operator raises on purpose
    ├── RenderFailedError         the renderer raised (a spec the renderer cannot handle)
    ├── UnmanagedKindError        the renderer produced a kind the operator does not manage
    ├── MissingApiError           a kind's API (usually a CRD: KEDA, LWS...) is not served
    ├── KubeconfigError           no usable kubeconfig (file missing, not YAML, no such context)
    ├── WaitTimeoutError          something awaited (a CRD, a deletion) did not happen in time
    ├── NotFoundError             the named LLMService does not exist
    ├── ApplyFailedError          `kubellm apply` could not apply some rendered objects
    ├── KubeApiError              the API server refused a request (status code + message)
    │   ├── ClusterUnreachableError  no answer at all from the API server (status 0)
    │   ├── UnauthorizedError     401: the credentials were not accepted
    │   ├── ForbiddenError        403: RBAC does not allow the verb on the resource
    │   ├── NamespaceMissingError 404 for the namespace an object was sent to
    │   └── ImmutableFieldError   a change needs the object re-created (Job templates...)
    ├── LeaseError                leader election failed or the lease was lost
    └── GatewayFlagError          a --gateway-* flag's value the gateway settings refuse

lightkube's ``ApiError`` and ``ConfigError`` and httpx's transport errors are mapped here
(``api_error``, ``transport_error``) and raised from ``kube.py`` and ``kubeconfig.py`` only.
Every message says what failed, why, and what to do; the CLI exits 1 on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class KubeconfigError(OperatorError):
    """No kubeconfig could be loaded; the message names what was tried."""


class WaitTimeoutError(OperatorError):
    """What was awaited did not happen before the deadline."""


class NotFoundError(OperatorError):
    """The object a command names does not exist (its namespace and CRD do)."""


class ApplyFailedError(OperatorError):
    """Objects of a direct apply were refused; the message is the first refusal's."""


class KubeApiError(OperatorError):
    def __init__(self, status: int, message: str, *, reason: str = "", text: str | None = None) -> None:
        """*message* is the server's; *text*, when given, is what the user reads instead."""
        self.status, self.reason = status, reason
        super().__init__(text or f"API server answered {status}{' ' + reason if reason else ''}: {message}")


UNREACHABLE_HINT = "is the cluster running? check `kubectl cluster-info`, or pick another cluster with --kubeconfig/--context"
UNTRUSTED_HINT = "its TLS certificate is not trusted: check certificate-authority(-data) of the cluster in the kubeconfig"


class ClusterUnreachableError(KubeApiError):
    def __init__(self, server: str, cause: str) -> None:
        self.server = server
        hint = UNTRUSTED_HINT if "CERTIFICATE_VERIFY_FAILED" in cause else UNREACHABLE_HINT
        super().__init__(0, cause, reason="Unreachable", text=f"cannot reach the Kubernetes API server at {server} ({cause}); {hint}")


class UnauthorizedError(KubeApiError):
    """401: expired or unknown credentials."""


class ForbiddenError(KubeApiError):
    """403: the user lacks an RBAC rule."""


class NamespaceMissingError(KubeApiError):
    """404 naming the namespace, not the object."""


class ImmutableFieldError(KubeApiError):
    """422 for a field that cannot change in place."""


class LeaseError(OperatorError):
    """Leader election could not proceed."""


class GatewayFlagError(OperatorError):
    """A ``--gateway-*`` flag's value the gateway settings refuse (names the flag and why)."""


@dataclass(frozen=True)
class Request:
    """What a call to the API server asked for, so a refusal can name it."""

    verb: str
    """The RBAC verb: get, list, create, patch, update, delete, watch."""
    resource: str
    """Plural resource name, e.g. ``llmservices``."""
    group: str
    namespace: str | None


@dataclass(frozen=True)
class Endpoint:
    """Which cluster and identity the client talks to (from the kubeconfig)."""

    server: str
    context: str
    user: str


def _qualified(request: Request) -> str:
    return f"{request.resource}.{request.group}" if request.group else request.resource


def _where(request: Request) -> str:
    return f"in namespace {request.namespace}" if request.namespace else "cluster-wide"


def forbidden(request: Request, endpoint: Endpoint, message: str) -> ForbiddenError:
    """403: name the verb, resource and namespace refused and the rule that would allow it."""
    role = (f"a Role in namespace {request.namespace} (bound by a RoleBinding)" if request.namespace
            else "a ClusterRole (bound by a ClusterRoleBinding)")
    ns = f" -n {request.namespace}" if request.namespace else ""
    return ForbiddenError(403, message, reason="Forbidden", text=(
        f"the API server refused to {request.verb} {_qualified(request)} {_where(request)} for user "
        f"{endpoint.user!r} (context {endpoint.context}): 403 Forbidden. Grant it with {role} with the rule "
        f"apiGroups: [{request.group!r}], resources: [{request.resource}], verbs: [{request.verb}]; "
        f"check with `kubectl auth can-i {request.verb} {_qualified(request)}{ns}`"))


def unauthorized(endpoint: Endpoint, message: str) -> UnauthorizedError:
    return UnauthorizedError(401, message, reason="Unauthorized", text=(
        f"the API server at {endpoint.server} did not accept the credentials of user {endpoint.user!r} "
        f"(context {endpoint.context}): 401 Unauthorized. The token or certificate is invalid or "
        "expired; refresh the kubeconfig (e.g. your cloud's get-credentials command)"))


def namespace_missing(namespace: str, message: str) -> NamespaceMissingError:
    return NamespaceMissingError(404, message, reason="NotFound", text=(
        f"namespace {namespace} does not exist; create it (`kubectl create namespace {namespace}`) or pick another with -n"))


def api_error(code: int, reason: str, message: str, details_kind: str, request: Request, endpoint: Endpoint) -> KubeApiError:
    """The most specific error for an API server refusal of *request*."""
    if code == 401:
        return unauthorized(endpoint, message)
    if code == 403:
        return forbidden(request, endpoint, message)
    if code == 404 and details_kind == "namespaces" and request.namespace:
        return namespace_missing(request.namespace, message)
    if code == 422 and "immutable" in message:
        return ImmutableFieldError(code, message, reason=reason)
    return KubeApiError(code, message, reason=reason)
