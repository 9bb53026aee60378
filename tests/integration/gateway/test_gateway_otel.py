"""`kubellm gateway` as a process, as a pod runs it: its traces and its drain.

OpenTelemetry for real: a `kubellm gateway` process with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set
sends its spans over OTLP/HTTP to a receiver on loopback (an aiohttp server in the test that
decodes the protobuf with opentelemetry-proto, as a collector does), in front of a real
simulator engine, driven by the real openai client.

One engine is a stand-in: a loopback server whose only job is to show the headers it was sent
(the simulator does not expose them), so the test can see the ``traceparent`` the gateway
passed on.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from aiohttp import web
import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import add_TraceServiceServicer_to_server

from kubellm.sim import SimConfig, run_fleet

KEY = "team-a-key-0123456789"
CLIENT_TRACE, CLIENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


class Receiver:
    """Spans as an OTLP collector receives them: {attribute: value} plus ids and resource."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    async def traces(self, request: web.Request) -> web.Response:
        """OTLP/HTTP: POST /v1/traces, protobuf."""
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.receive(ExportTraceServiceRequest.FromString(body))
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:  # noqa: N802 - gRPC's name
        """OTLP/gRPC: the TraceService's one method."""
        self.receive(request)
        return ExportTraceServiceResponse()

    def receive(self, export: ExportTraceServiceRequest) -> None:
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append({
                        "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex(), "kind": span.kind, "status": span.status.code,
                        "resource": resource, **{a.key: _value(a.value) for a in span.attributes},
                    })


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def gateway_process(config: Path, env: dict[str, str]) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`kubellm gateway` as its own process (the real serve path reads the environment)."""
    log = config.with_suffix(".log")
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubellm.cli.main", "gateway", "--config", str(config), "--port", "0",
            env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert "listening on" in line, line + log.read_text()
        yield line.split()[-1], process
    finally:
        if process.returncode is None:
            process.terminate()  # SIGTERM: drain, then the batched spans are flushed
        await asyncio.wait_for(process.wait(), 30)


async def test_spans_reach_an_otlp_receiver_with_model_tenant_endpoint_status_and_the_engine_gets_traceparent(
        tmp_path: Path) -> None:
    receiver, seen = Receiver(), []
    otlp = web.Application()
    otlp.router.add_post("/v1/traces", receiver.traces)

    async def capture(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    probe = web.Application()
    probe.router.add_post("/v1/completions", capture)
    probe.router.add_get("/health", lambda r: web.json_response({}))
    (tmp_path / "keys").write_text(f"team-a:{KEY}\n")
    async with serving(otlp) as collector, serving(probe) as probe_url, run_fleet(
            SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=1), replicas=1) as sims:
        config = {"models": [{"name": "m", "endpoints": list(sims)}, {"name": "probe", "endpoints": [probe_url]}],
                  "auth": {"apiKeysFile": str(tmp_path / "keys"), "tenants": [{"name": "team-a"}]}}
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_SERVICE_NAME": "kubellm-gateway-test",
               "OTEL_BSP_SCHEDULE_DELAY": "50"}
        async with gateway_process(tmp_path / "gateway.yaml", env) as (url, _):
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=5, stream=True,
                extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
            assert [c async for c in stream]
            with pytest.raises(openai.AuthenticationError):
                await openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="wrong-key-0000", max_retries=0).completions.create(
                    model="m", prompt="x", max_tokens=2)
            await client.completions.create(model="probe", prompt="x", max_tokens=2)
            for _ in range(200):
                if len(receiver.spans) >= 3:
                    break
                await asyncio.sleep(0.05)
    spans = {(s["kubellm.model"], s["http.response.status_code"]): s for s in receiver.spans}
    assert len(receiver.spans) == 3, receiver.spans
    chat = spans[("m", 200)]
    assert chat["name"] == "gateway chat" and chat["kind"] == 2  # SPAN_KIND_SERVER
    assert (chat["trace_id"], chat["parent_id"]) == (CLIENT_TRACE, CLIENT_SPAN)  # continues the client's trace
    assert chat["kubellm.tenant"] == "team-a" and chat["kubellm.endpoint"] == sims[0]
    assert chat["gen_ai.request.model"] == "m" and chat["gen_ai.usage.output_tokens"] == 5
    assert chat["resource"]["service.name"] == "kubellm-gateway-test"
    refused = spans[("unknown", 401)]
    assert refused["kubellm.endpoint"] == "none" and refused["kubellm.tenant"] == "unknown"
    probe_span = spans[("probe", 200)]
    _, trace_id, parent, _ = seen[0]["traceparent"].split("-")
    assert (trace_id, parent) == (probe_span["trace_id"], probe_span["span_id"])  # the engine request's parent


async def test_spans_reach_an_otlp_grpc_receiver_as_the_rendered_pod_sends_them(tmp_path: Path) -> None:
    """The gateway pod's environment (render/gateway.py): the engines' collector address over
    gRPC. A real gRPC server with OTLP's TraceService receives the request's span."""
    receiver = Receiver()
    server = grpc.aio.server()
    add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    (tmp_path / "keys").write_text(f"team-a:{KEY}\n")
    try:
        async with run_fleet(SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=1), replicas=1) as sims:
            config = {"models": [{"name": "m", "endpoints": list(sims)}], "auth": {"apiKeysFile": str(tmp_path / "keys")}}
            (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                   "OTEL_SERVICE_NAME": "kubellm-gateway", "OTEL_BSP_SCHEDULE_DELAY": "50"}
            async with gateway_process(tmp_path / "gateway.yaml", env) as (url, _):
                client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
                stream = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True)
                assert [c async for c in stream]
                for _ in range(200):
                    if receiver.spans:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await server.stop(None)
    [span] = receiver.spans
    assert (span["kubellm.model"], span["kubellm.tenant"], span["http.response.status_code"]) == ("m", "team-a", 200)
    assert span["kubellm.endpoint"] == sims[0] and span["resource"]["service.name"] == "kubellm-gateway"


async def test_a_draining_gateway_serves_a_kept_alive_connection_once_more_and_closes_it(tmp_path: Path) -> None:
    """SIGTERM (a rolling restart): a client whose kept-alive connection still points at the
    old pod gets its request served with `Connection: close` (then reconnects where the
    Service now points), not an error. A long stream keeps the drain open meanwhile."""
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=20), replicas=1) as sims:
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump({"models": [{"name": "m", "endpoints": list(sims)}]}))
        async with gateway_process(tmp_path / "gateway.yaml", {}) as (url, process):
            kept, other = httpx.AsyncClient(base_url=url, timeout=30), httpx.AsyncClient(base_url=url, timeout=30)
            body = {"model": "m", "prompt": "x", "max_tokens": 2}
            first = await kept.post("/v1/completions", json=body)
            assert first.status_code == 200 and first.headers.get("Connection") != "close"
            long = asyncio.ensure_future(other.post("/v1/completions", json={**body, "max_tokens": 150}))
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)  # draining now: the listening socket is closed
            again = await kept.post("/v1/completions", json=body)  # the same connection
            assert again.status_code == 200, again.text
            assert again.headers.get("Connection") == "close"
            assert (await long).status_code == 200
            await kept.aclose()
            await other.aclose()

