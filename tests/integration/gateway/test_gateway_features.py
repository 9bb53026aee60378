"""Tenants, disaggregated prefill/decode, scale from zero and config reload, on real engines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubellm.gateway.discovery import LocalDiscovery
from kubellm.gateway.serve import watch_config
from kubellm.sim import SimConfig, run_fleet, start_fleet, stop_fleet

from .conftest import model

FAST = dict(fixed_ttft_ms=5, fixed_tpot_ms=1)
MSG = [{"role": "user", "content": "hello there"}]


async def test_api_keys_models_and_limits(start_gateway, tmp_path: Path):
    keys = tmp_path / "keys"
    keys.write_text("alpha:alpha-key-123\nbeta:beta-key-4567\n")
    async with run_fleet(SimConfig(model="m", **FAST), replicas=1) as urls, \
            run_fleet(SimConfig(model="other", **FAST), replicas=1) as other:
        gw = await start_gateway({
            "models": [model("m", urls), model("other", other)],
            "auth": {"apiKeysFile": str(keys), "tenants": [
                {"name": "alpha", "models": ["m"], "rpm": 3}, {"name": "beta", "tpm": 50}]}})
        with pytest.raises(openai.AuthenticationError) as e401:
            await gw.client("wrong-key-000").chat.completions.create(model="m", messages=MSG)
        assert e401.value.body["code"] == "invalid_api_key"
        alpha = gw.client("alpha-key-123")
        with pytest.raises(openai.PermissionDeniedError):
            await alpha.chat.completions.create(model="other", messages=MSG)
        assert {m.id for m in (await alpha.models.list()).data} == {"m"}
        for _ in range(2):  # the 403 above did not count: 3 per minute
            await alpha.chat.completions.create(model="m", messages=MSG, max_tokens=1)
        await alpha.chat.completions.create(model="m", messages=MSG, max_tokens=1)
        with pytest.raises(openai.RateLimitError) as e429:
            await alpha.chat.completions.create(model="m", messages=MSG, max_tokens=1)
        assert int(e429.value.response.headers["Retry-After"]) >= 1
        beta = gw.client("beta-key-4567")
        r = await beta.chat.completions.create(model="other", messages=MSG, max_tokens=60)
        assert r.usage.total_tokens > 50  # allowed (budget left), then charged after the fact
        with pytest.raises(openai.RateLimitError, match="tokens per minute"):
            await beta.chat.completions.create(model="other", messages=MSG, max_tokens=1)
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            text = await resp.text()
        assert 'tenant="alpha"' in text and "alpha-key" not in text and "beta-key" not in text


async def test_latency_histograms_per_model_endpoint_and_tenant_never_the_key(start_gateway, tmp_path: Path,
                                                                             caplog):
    key, wrong = "sk-alpha-SECRET-0123456789", "sk-wrong-SECRET-9876543210"
    keys = tmp_path / "keys"
    keys.write_text(f"alpha:{key}\n")
    caplog.set_level(logging.DEBUG)
    # 20 ms per token: each token is its own read at the gateway, so inter-token gaps are seen
    async with run_fleet(SimConfig(model="m", fixed_ttft_ms=5, fixed_tpot_ms=20), replicas=1) as urls:
        gw = await start_gateway({"models": [model("m", urls)], "auth": {"apiKeysFile": str(keys)}})
        chunks = [ch async for ch in await gw.client(key).chat.completions.create(
            model="m", messages=MSG, max_tokens=5, stream=True)]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks)
        with pytest.raises(openai.AuthenticationError):
            await gw.client(wrong).chat.completions.create(model="m", messages=MSG)
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            text = await resp.text()
    want = {"model": "m", "endpoint": urls[0], "tenant": "alpha"}
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("kubellm_time_to_first_token_seconds", "kubellm_inter_token_latency_seconds",
                 "kubellm_request_duration_seconds"):
        counts = [s for s in families[name].samples if s.name == name + "_count"]
        assert [(s.labels, s.value > 0) for s in counts] == [(want, True)], name
    refused = [s.labels for s in families["kubellm_requests"].samples if s.labels.get("status") == "401"]
    assert refused == [{"model": "unknown", "endpoint": "none", "tenant": "unknown", "status": "401"}]
    for secret in (key, wrong, "SECRET"):
        assert secret not in text
        assert secret not in caplog.text
    assert '"tenant": "alpha"' in caplog.text  # the access log names the tenant


def _record_submits(server, seen: list) -> list:
    """Record, at the engine, every request the simulator's HTTP layer submits to *server*'s engine
    (the simulator keeps no request log): ``(GenRequest, Progress)`` pairs appended to *seen*."""
    submit = server.engine.submit

    def recording(req, arrival=None):
        prog = submit(req, arrival)
        seen.append((req, prog))
        return prog

    server.engine.submit = recording
    return seen


async def test_disaggregated_prefill_then_decode(start_gateway):
    """Cost-model engines (profile tiny): the fixed-latency engine does not do P/D."""
    async with run_fleet(SimConfig(model="pd", kv_role="prefill", profile="tiny"), replicas=1) as p, \
            run_fleet(SimConfig(model="pd", kv_role="decode", profile="tiny"), replicas=2) as d:
        prefills = _record_submits(p.servers[0], [])
        decodes: list = []
        for server in d.servers:
            _record_submits(server, decodes)
        gw = await start_gateway({"models": [{"name": "pd", "disaggregation": {
            "prefillEndpoints": list(p), "decodeEndpoints": list(d)}}]})
        c = gw.client()
        chunks = [ch async for ch in await c.chat.completions.create(
            model="pd", messages=[{"role": "user", "content": "a long prompt " * 40}], max_tokens=12,
            stream=True, stream_options={"include_usage": True})]
        assert chunks[-1].usage.completion_tokens == 12
        prefill_stats = p.servers[0].engine.stats
        decode_tokens = sum(s.engine.stats.generation_tokens for s in d.servers)
        assert prefill_stats.generation_tokens == 1  # the prefill step made one token only
        assert decode_tokens == 12
        r = await c.chat.completions.create(model="pd", messages=MSG, max_tokens=4)
        assert r.usage.completion_tokens == 4
    # each request: one prefill asked to keep its KV for a remote decode, then one decode carrying
    # exactly the kv_transfer_params that prefill answered with (where its blocks are)
    assert len(prefills) == 2 and len(decodes) == 2
    for (pre_req, pre_prog), (dec_req, _) in zip(prefills, decodes):
        assert pre_req.remote_decode and pre_req.num_output == 1 and pre_req.kv_transfer_in is None
        returned = pre_prog.kv_transfer_params
        assert returned["do_remote_prefill"] is True and returned["remote_block_ids"]
        assert dec_req.kv_transfer_in == returned
        assert not dec_req.remote_decode and dec_req.prompt_ids == pre_req.prompt_ids
    long, short = (prog.kv_transfer_params["remote_block_ids"] for _, prog in prefills)
    assert len(long) > len(short)  # each decode got its own prefill's blocks


async def test_scale_from_zero_holds_requests_until_an_engine_is_up(start_gateway):
    discovery = LocalDiscovery()
    started: list[object] = []
    calls: list[str] = []

    async def activate(name: str) -> None:
        calls.append(name)
        fleet = await start_fleet(SimConfig(model=name, **FAST), replicas=1)
        started.append(fleet)
        discovery.set_endpoints(name, list(fleet))
        while not gw.gateway.pools[name].has_routable():  # the hook's contract: return once a replica is
            await asyncio.sleep(0.01)  # ready (else a request arriving meanwhile calls it again)

    try:
        gw = await start_gateway({"models": [{"name": "cold", "scaleFromZero": True}, model("nozero", [])]},
                                 discovery=[discovery], activator=activate)
        c = gw.client()
        rs = await asyncio.gather(*(c.completions.create(model="cold", prompt="x", max_tokens=2) for _ in range(5)))
        assert all(r.usage.completion_tokens == 2 for r in rs)
        assert calls == ["cold"]  # one activation for the five held requests
        with pytest.raises(openai.InternalServerError) as e503:
            await c.completions.create(model="nozero", prompt="x")
        assert e503.value.status_code == 503
    finally:
        for fleet in started:
            await stop_fleet(fleet.servers)  # type: ignore[attr-defined]


async def test_failed_activation_fails_held_requests_fast(start_gateway):
    async def broken(name: str) -> None:
        raise RuntimeError("quota exceeded")

    gw = await start_gateway({"models": [{"name": "cold", "scaleFromZero": True}]}, activator=broken)
    with pytest.raises(openai.InternalServerError, match="quota exceeded"):
        async with asyncio.timeout(5):
            await gw.client().completions.create(model="cold", prompt="x")


async def test_config_reload_without_restart(start_gateway, tmp_path: Path):
    async with run_fleet(SimConfig(model="a", **FAST), replicas=1) as a:
        cfg = {"models": [model("a", a)]}
        path = tmp_path / "gw.yaml"
        path.write_text(yaml.safe_dump(cfg))
        gw = await start_gateway(cfg)
        watcher = asyncio.ensure_future(watch_config(path, gw.app, interval_s=0.05))
        try:
            c = gw.client()
            with pytest.raises(openai.NotFoundError):
                await c.completions.create(model="a-alias", prompt="x", max_tokens=1)
            path.write_text("models: [ {name: a, bogus: 1} ]")  # rejected: the running config stays
            await asyncio.sleep(0.3)
            await c.completions.create(model="a", prompt="x", max_tokens=1)
            cfg["models"][0]["aliases"] = ["a-alias"]
            path.write_text(yaml.safe_dump(cfg))
            for _ in range(40):
                await asyncio.sleep(0.05)
                if "a-alias" in {m.id for m in (await c.models.list()).data}:
                    break
            r = await c.completions.create(model="a-alias", prompt="x", max_tokens=1)
            assert r.usage.completion_tokens == 1
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def test_precise_prefix_follows_engine_kv_events(start_gateway):
    """Cost-model engines publishing KV events over ZMQ; the gateway routes on what they report."""
    async with run_fleet(SimConfig(model="m", profile="tiny", kv_events_port=0), replicas=3) as urls:
        kv = {s.url: s.kv_publisher.endpoint for s in urls.servers}
        gw = await start_gateway({
            "models": [model("m", urls, profile="precise", preciseTokenizer="sim", kvEventsEndpoints=kv)],
            "profiles": {"precise": {"scorers": [{"type": "precise-prefix", "weight": 1}]}}})
        await asyncio.sleep(0.3)  # ZMQ subscriptions settle
        index = gw.gateway.routing.precise_prefix
        c = gw.client()
        system = "You are a careful assistant. " * 30
        await c.chat.completions.create(model="m", messages=[{"role": "system", "content": system},
                                                              {"role": "user", "content": "first"}], max_tokens=2)
        for _ in range(50):
            if len(index):
                break
            await asyncio.sleep(0.02)
        owner = [s for s in urls.servers if s.engine.stats.prompt_tokens > 0]
        assert len(owner) == 1 and len(index) > 0
        for i in range(6):
            await c.chat.completions.create(model="m", messages=[{"role": "system", "content": system},
                                                                  {"role": "user", "content": f"q{i}"}], max_tokens=2)
        assert sum(s.engine.stats.prompt_tokens > 0 for s in urls.servers) == 1  # all followed the cache
        assert owner[0].engine.stats.prefix_hits > 0


async def test_scale_from_zero_without_a_hook_exports_pending_for_keda(start_gateway):
    """Cluster mode: no activation hook; KEDA scales on kubellm_gateway_pending_requests and the
    EndpointSlice watch (here the local registry stands in for it) brings the replica in."""
    discovery = LocalDiscovery()
    gw = await start_gateway({"models": [{"name": "cold", "scaleFromZero": True}]}, discovery=[discovery])
    held = asyncio.ensure_future(gw.client().completions.create(model="cold", prompt="x", max_tokens=1))
    async with aiohttp.ClientSession() as s:
        for _ in range(100):
            async with s.get(gw.url + "/metrics") as resp:
                if 'kubellm_gateway_pending_requests{model="cold"} 1.0' in await resp.text():
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the held request never showed as pending")
    async with run_fleet(SimConfig(model="cold", **FAST), replicas=1) as urls:
        discovery.set_endpoints("cold", list(urls))
        r = await asyncio.wait_for(held, 10)
        assert r.usage.completion_tokens == 1
