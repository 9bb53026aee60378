"""``kubellm check``: the deployment check tutorials write by hand, as one command.

Steps: the probe (:mod:`kubellm.bench.probe`: something answers, the model is served, else
``TargetError`` before any row); ``/v1/models`` lists the model; a completion and a streamed chat completion succeed
and return usage; ``/metrics`` exposes the expected series; a short closed-loop load test is
judged by :mod:`kubellm.bench.thresholds`. Every step yields rows of a pass/fail table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubellm.bench import driver
from kubellm.bench.client import Target, send
from kubellm.bench.probe import probe
from kubellm.bench.records import LoadPoint
from kubellm.bench.stats import Summary, summarize
from kubellm.bench.thresholds import Thresholds, Verdict, judge
from kubellm.bench.workload import Length, RequestSpec, WorkloadConfig, generate

DEFAULT_SERIES = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:time_to_first_token_seconds",
    "vllm:generation_tokens",
)


@dataclass(frozen=True)
class CheckPlan:
    """What to check and how hard to load it."""

    base_url: str
    model: str | None = None
    api_key: str | None = None
    thresholds: Thresholds = Thresholds()
    series: Sequence[str] = DEFAULT_SERIES
    requests: int = 40
    concurrency: int = 4
    output_tokens: int = 32
    timeout_s: float = 60.0


@dataclass
class CheckReport:
    verdicts: list[Verdict]
    summary: Summary | None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]


def _url(plan: CheckPlan, path: str) -> str:
    return plan.base_url.rstrip("/") + path


def _headers(plan: CheckPlan) -> dict[str, str]:
    return {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}


async def _get_json(session: aiohttp.ClientSession, plan: CheckPlan, path: str) -> Any:
    async with session.get(_url(plan, path), headers=_headers(plan)) as response:
        response.raise_for_status()
        return await response.json(content_type=None)


async def check_models(session: aiohttp.ClientSession, plan: CheckPlan) -> tuple[Verdict, str | None]:
    """The model to use from here on: the one asked for if listed, else the first listed."""
    expected = f"lists {plan.model}" if plan.model else "lists a model"
    try:
        body = await _get_json(session, plan, "/v1/models")
        ids = [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError) as err:
        return Verdict("GET /v1/models", expected, _describe(err), False), None
    model = plan.model if plan.model in ids else (ids[0] if ids and not plan.model else None)
    return Verdict("GET /v1/models", expected, ", ".join(ids) or "no models", model is not None), model


async def check_completion(session: aiohttp.ClientSession, plan: CheckPlan, model: str) -> Verdict:
    body = {"model": model, "prompt": "Say hello.", "max_tokens": 8}
    name, expected = "POST /v1/completions", "200 with text and usage"
    try:
        async with session.post(_url(plan, "/v1/completions"), json=body, headers=_headers(plan)) as response:
            if response.status != 200:
                return Verdict(name, expected, f"HTTP {response.status}", False)
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
        return Verdict(name, expected, _describe(err), False)
    usage = reply.get("usage") or {}
    tokens = usage.get("completion_tokens")
    passed = bool(reply.get("choices")) and isinstance(tokens, int) and tokens > 0
    return Verdict(name, expected, f"{tokens} completion tokens" if passed else "no usage", passed)


async def check_stream(session: aiohttp.ClientSession, plan: CheckPlan, model: str) -> Verdict:
    target = Target(plan.base_url, model, plan.api_key, timeout_s=plan.timeout_s)
    spec = RequestSpec(messages=({"role": "user", "content": "Say hello."},), max_tokens=8)
    record = await send(session, target, spec, index=0, origin=time.perf_counter(), clock=time.perf_counter)
    name, expected = "streamed chat", "tokens streamed, usage at end"
    if not record.ok:
        return Verdict(name, expected, f"{record.error}: {record.error_detail}", False)
    if record.prompt_tokens is None:
        return Verdict(name, expected, "stream had no usage chunk", False)
    measured = f"{record.output_tokens} tokens, TTFT {record.ttft_s * 1000 if record.ttft_s else 0:.0f} ms"
    return Verdict(name, expected, measured, True)


async def check_metrics(session: aiohttp.ClientSession, plan: CheckPlan) -> Verdict:
    name = "GET /metrics"
    expected = f"{len(plan.series)} series"
    try:
        async with session.get(_url(plan, "/metrics"), headers=_headers(plan)) as response:
            response.raise_for_status()
            text = await response.text()
        present = {family.name for family in text_string_to_metric_families(text)}
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
        return Verdict(name, expected, _describe(err), False)
    missing = [s for s in plan.series if s not in present and s.removesuffix("_total") not in present]
    return Verdict(name, expected, "missing " + ", ".join(missing) if missing else "all present", not missing)


async def check_load(plan: CheckPlan, model: str) -> tuple[list[Verdict], Summary]:
    workload = WorkloadConfig(
        prompt_tokens=Length(low=64, high=64),
        output_tokens=Length(low=plan.output_tokens, high=plan.output_tokens),
    )
    target = Target(plan.base_url, model, plan.api_key, timeout_s=plan.timeout_s)
    load = LoadPoint(mode="concurrency", value=plan.concurrency)
    records = await driver.run(target, generate(workload, plan.requests), load)
    summary = summarize(records)
    return judge(summary, plan.thresholds), summary


async def run_check(plan: CheckPlan) -> CheckReport:
    """The verdicts; TargetError at once, before any row, when nothing answers at the URL or
    the model is not served (a table of failures would only repeat it)."""
    await probe(plan.base_url, plan.model, _headers(plan))
    timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        models, model = await check_models(session, plan)
        verdicts = [models, await check_metrics(session, plan)]
        if model is None:
            return CheckReport(verdicts, None)
        verdicts.append(await check_completion(session, plan, model))
        verdicts.append(await check_stream(session, plan, model))
    load_verdicts, summary = await check_load(plan, model)
    return CheckReport(verdicts + load_verdicts, summary)


def _describe(err: BaseException) -> str:
    if isinstance(err, aiohttp.ClientResponseError):
        return f"HTTP {err.status}"
    if isinstance(err, asyncio.TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {err}"[:200]
