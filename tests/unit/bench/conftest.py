"""Builders of request records for bench's unit tests (plain data, no servers)."""

from __future__ import annotations

import pytest

from kubellm.bench.records import RequestRecord


def ok_record(index: int, *, start: float = 0.0, ttft: float = 0.1, tpot: float = 0.01,
              tokens: int = 11, prompt: int = 20) -> RequestRecord:
    """A successful request whose TPOT is exactly *tpot* by construction."""
    e2e = ttft + tpot * (tokens - 1)
    return RequestRecord(index=index, start_s=start, ttft_s=ttft, e2e_s=e2e,
                         itl_s=[tpot] * (tokens - 1), prompt_tokens=prompt, output_tokens=tokens)


def failed_record(index: int, kind: str = "http_503", *, start: float = 0.0) -> RequestRecord:
    return RequestRecord(index=index, start_s=start, e2e_s=0.01, error=kind, error_detail="x")


@pytest.fixture
def make_ok():  # type: ignore[no-untyped-def]
    return ok_record


@pytest.fixture
def make_failed():  # type: ignore[no-untyped-def]
    return failed_record
