"""Prefill/decode disaggregation: the decode engine skips the prompt and pays the transfer.

Times are read from the engines' own TTFT histograms (time from arrival at the engine to
the first token), which do not include the noise of a busy test machine's HTTP path.
"""

from __future__ import annotations

import httpx

from kubellm.sim import SimConfig, run_engine
from kubellm.sim.costmodel import kv_transfer_time
from kubellm.sim.profiles import get_profile

from .conftest import engine_ttft

PROMPT = "disaggregated serving splits prefill from decode " * 300


async def test_prefill_returns_params_and_decode_skips_prompt_compute(http: httpx.AsyncClient) -> None:
    gbps = 10.0
    async with run_engine(SimConfig(kv_role="prefill", enable_prefix_caching=False)) as p, \
            run_engine(SimConfig(kv_role="decode", kv_transfer_gbps=gbps, enable_prefix_caching=False)) as d:
        prefill_ttft, pre = await engine_ttft(http, p.url, {"prompt": PROMPT, "max_tokens": 1,
                                                        "kv_transfer_params": {"do_remote_decode": True}})
        params = pre["kv_transfer_params"]
        assert params["do_remote_prefill"] is True and params["remote_block_ids"]
        decode_ttft, dec = await engine_ttft(http, d.url, {"prompt": PROMPT, "max_tokens": 1,
                                                       "kv_transfer_params": params})
        local_ttft, _ = await engine_ttft(http, d.url, {"prompt": PROMPT, "max_tokens": 1})
    transfer = kv_transfer_time(pre["usage"]["prompt_tokens"], get_profile("llama-3.1-8b-h100"), gbps * 1e9)
    assert dec["usage"]["prompt_tokens"] == pre["usage"]["prompt_tokens"]
    assert transfer <= decode_ttft < transfer + 0.02  # the transfer, then one decode-sized step
    assert local_ttft > 2 * decode_ttft  # ...instead of the prompt's compute
    assert abs(local_ttft - prefill_ttft) < 0.1 * prefill_ttft


async def test_plain_request_to_prefill_engine_has_no_params(http: httpx.AsyncClient) -> None:
    async with run_engine(SimConfig(kv_role="prefill")) as p:
        r = await http.post(p.url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2})
    assert r.json()["kv_transfer_params"] is None
