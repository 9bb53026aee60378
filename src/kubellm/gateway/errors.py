"""Errors of the gateway, each mapped to one OpenAI error body in one handler.

::

    GatewayError                     (500, server_error)
    ├── ConfigError                  bad gateway config / keys file (not an HTTP error)
    ├── BadRequestError              400 invalid_request_error
    │   └── PayloadTooLargeError     413
    ├── AuthenticationError          401 invalid_api_key
    ├── PermissionDeniedError        403 model not allowed for the tenant
    ├── ModelNotFoundError           404 model_not_found
    ├── RateLimitedError             429 tenant RPM/TPM limit (carries retry_after)
    │   └── OverloadedError          429 model wait queue full (carries retry_after)
    └── UpstreamError                502 engine failed or broke the connection
        ├── NoEndpointError          503 no ready endpoint (after scale-from-zero wait)
        └── UpstreamTimeoutError     504 connect / first-byte / total timeout
"""

from __future__ import annotations

import json


class GatewayError(Exception):
    """Base of the gateway's errors; ``status`` and ``error_type`` shape the OpenAI body."""

    status = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ConfigError(GatewayError):
    """The gateway config or a file it names is invalid; the message names the field."""


class BadRequestError(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class PayloadTooLargeError(BadRequestError):
    status = 413
    code = "payload_too_large"


class AuthenticationError(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    error_type = "permission_denied"
    code = "model_not_allowed"


class ModelNotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class RateLimitedError(GatewayError):
    status = 429
    error_type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class OverloadedError(RateLimitedError):
    code = "model_overloaded"


class UpstreamError(GatewayError):
    status = 502
    error_type = "upstream_error"


class NoEndpointError(UpstreamError):
    status = 503
    code = "no_ready_endpoint"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


def error_body(err: GatewayError) -> dict[str, object]:
    """The OpenAI-style JSON body of *err*."""
    return {"error": {"message": err.message, "type": err.error_type, "param": None, "code": err.code}}


def relayed_error_body(status: int, body: bytes) -> bytes:
    """An engine's error *body* as the OpenAI error object: as it is when it already is one
    (vLLM's own errors), else wrapped (a web framework's plain "404: Not Found", an HTML page
    from a proxy), so every client error the gateway returns has the same shape."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    text = body.decode(errors="replace").strip()[:200] or "no body"
    kind = "invalid_request_error" if status < 500 else "server_error"
    wrapped = {"error": {"message": f"the engine answered HTTP {status}: {text}", "type": kind, "param": None, "code": None}}
    return json.dumps(wrapped).encode()
