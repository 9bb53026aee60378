"""The per-request record, measured from the stream itself, and the result file's shape."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LoadMode = Literal["rate", "concurrency"]
Arrivals = Literal["poisson", "constant"]


class RequestRecord(BaseModel):
    """What one request did; times are seconds, offsets are from the run's start."""

    model_config = ConfigDict(extra="forbid")

    index: int
    scheduled_s: float | None = Field(
        default=None, description="when the open-loop schedule said to send it"
    )
    start_s: float = Field(description="when it was sent")
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = Field(default_factory=list, description="gaps between token chunks")
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = Field(default=None, description="error kind, e.g. http_503, timeout")
    error_detail: str | None = None
    conversation: int | None = None
    turn: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (e2e - ttft) / (output tokens - 1)."""
        if self.ttft_s is None or self.e2e_s is None or not self.output_tokens:
            return None
        if self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def end_s(self) -> float | None:
        return None if self.e2e_s is None else self.start_s + self.e2e_s


class SLO(BaseModel):
    """Service-level objectives a request must meet to count towards goodput."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float | None = Field(default=None, gt=0)
    tpot_s: float | None = Field(default=None, gt=0)

    def met_by(self, record: RequestRecord) -> bool:
        if not record.ok or record.ttft_s is None:
            return False
        if self.ttft_s is not None and record.ttft_s > self.ttft_s:
            return False
        tpot = record.tpot_s
        return self.tpot_s is None or tpot is None or tpot <= self.tpot_s


class LoadPoint(BaseModel):
    """The offered load of one run: a request rate (open loop) or a concurrency (closed loop)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: LoadMode
    value: float = Field(gt=0)
    arrivals: Arrivals = Field(default="poisson", description="rate mode: how arrivals are spaced")

    @property
    def label(self) -> str:
        if self.mode == "concurrency":
            return f"{self.value:g} concurrent"
        return f"{self.value:g} req/s" + (" (constant)" if self.arrivals == "constant" else "")
