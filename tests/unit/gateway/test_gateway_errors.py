"""An engine's error answer reaches the client as the OpenAI error object, whatever its shape."""

from __future__ import annotations

import json

import pytest

from kubellm.gateway.errors import relayed_error_body


def test_an_openai_error_from_the_engine_is_relayed_as_it_is() -> None:
    body = json.dumps({"error": {"message": "max_tokens too large", "type": "BadRequestError", "param": None, "code": 400}}).encode()
    assert relayed_error_body(400, body) is body


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(404, b"404: Not Found", "invalid_request_error"), (502, b"<html>bad gateway</html>", "server_error"),
     (400, b"", "invalid_request_error"), (422, b'{"detail": "not the OpenAI shape"}', "invalid_request_error"),
     (404, b"\xff\xfe", "invalid_request_error")],
)  # fmt: skip
def test_any_other_error_body_is_wrapped(status: int, body: bytes, kind: str) -> None:
    error = json.loads(relayed_error_body(status, body))["error"]
    assert error["type"] == kind and error["message"].startswith(f"the engine answered HTTP {status}:")
    assert set(error) == {"message", "type", "param", "code"}
