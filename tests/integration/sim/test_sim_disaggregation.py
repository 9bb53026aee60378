"""Prefill/decode disaggregation: the decode engine skips the prompt and pays the transfer."""

from __future__ import annotations

import time

import httpx

from kubellm.sim import SimConfig, run_engine
from kubellm.sim.costmodel import kv_transfer_time
from kubellm.sim.profiles import get_profile

PROMPT = "disaggregated serving splits prefill from decode " * 300


async def _post(http: httpx.AsyncClient, url: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    r = await http.post(url + "/v1/completions", json=body)
    assert r.status_code == 200, r.text
    return time.perf_counter() - start, r.json()


async def test_prefill_returns_params_and_decode_skips_prompt_compute(http: httpx.AsyncClient) -> None:
    gbps = 50.0
    async with run_engine(SimConfig(kv_role="prefill", enable_prefix_caching=False)) as p, \
            run_engine(SimConfig(kv_role="decode", kv_transfer_gbps=gbps, enable_prefix_caching=False)) as d:
        prefill_s, pre = await _post(http, p.url, {"prompt": PROMPT, "max_tokens": 1,
                                                  "kv_transfer_params": {"do_remote_decode": True}})
        params = pre["kv_transfer_params"]
        assert params["do_remote_prefill"] is True and params["remote_block_ids"]
        decode_s, dec = await _post(http, d.url, {"prompt": PROMPT, "max_tokens": 1, "kv_transfer_params": params})
        local_s, _ = await _post(http, d.url, {"prompt": PROMPT, "max_tokens": 1})
    transfer = kv_transfer_time(pre["usage"]["prompt_tokens"], get_profile("llama-3.1-8b-h100"), gbps * 1e9)
    assert dec["usage"]["prompt_tokens"] == pre["usage"]["prompt_tokens"]
    assert decode_s >= transfer  # the KV transfer is paid
    assert decode_s < local_s / 2  # ...instead of the prompt's compute
    assert local_s > 0.8 * prefill_s


async def test_plain_request_to_prefill_engine_has_no_params(http: httpx.AsyncClient) -> None:
    async with run_engine(SimConfig(kv_role="prefill")) as p:
        _, body = await _post(http, p.url, {"prompt": "hi", "max_tokens": 2})
    assert body["kv_transfer_params"] is None
