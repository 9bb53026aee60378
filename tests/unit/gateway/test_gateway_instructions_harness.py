"""bench/gateway_instructions.py's in-process harness still drives the real gateway: every
request answered 200 through the fast server, the default profile and the engine client, on
in-memory transports (what the benchmark counts under valgrind; no sockets, by design)."""

from __future__ import annotations

import pytest
import uvloop

from tests.scripts import load_script


@pytest.fixture(scope="module")
def harness():
    return load_script("bench/gateway_instructions.py")


@pytest.mark.parametrize("connections", [1, 4])
def test_every_request_of_the_harness_is_answered(harness, connections):
    answered: list[bytes] = []
    original = harness._ClientSide.write

    def write(self, data: bytes) -> None:
        answered.append(data)
        original(self, data)

    harness._ClientSide.write = write
    try:
        failed = uvloop.run(harness.serve(200, connections))
    finally:
        harness._ClientSide.write = original
    assert failed == 0
    assert len(answered) == 200
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") and a.endswith(harness.ANSWER) for a in answered)
