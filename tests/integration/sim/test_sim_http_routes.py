"""vLLM's non-generation routes: models, LoRA adapters, tokenize, health, metrics, fleet ports."""

from __future__ import annotations

import asyncio

import httpx

from kubellm.sim import Fleet, SimConfig, run_engine, run_fleet, tokenizer

from .conftest import metric


async def test_lora_load_list_use_unload(fleet2: Fleet, http: httpx.AsyncClient) -> None:
    url = fleet2[0]
    r = await http.post(url + "/v1/load_lora_adapter", json={"lora_name": "sql", "lora_path": "/loras/sql"})
    assert r.status_code == 200
    again = await http.post(url + "/v1/load_lora_adapter", json={"lora_name": "sql", "lora_path": "/x"})
    assert again.status_code == 400 and "already been loaded" in again.json()["error"]["message"]
    models = (await http.get(url + "/v1/models")).json()["data"]
    assert {m["id"]: m["parent"] for m in models} == {"sim-model": None, "sql": "sim-model"}
    ok = await http.post(url + "/v1/completions", json={"model": "sql", "prompt": "select", "max_tokens": 2})
    assert ok.status_code == 200 and ok.json()["model"] == "sql"
    assert (await http.post(url + "/v1/unload_lora_adapter", json={"lora_name": "sql"})).status_code == 200
    gone = await http.post(url + "/v1/completions", json={"model": "sql", "prompt": "x", "max_tokens": 1})
    assert gone.status_code == 404
    other = await http.get(fleet2[1] + "/v1/models")  # engines do not share adapters
    assert [m["id"] for m in other.json()["data"]] == ["sim-model"]


async def test_tokenize_matches_usage_and_detokenize_inverts(fleet2: Fleet, http: httpx.AsyncClient) -> None:
    prompt = "The quick brown fox jumps over the lazy dog."
    tok = (await http.post(fleet2[0] + "/tokenize", json={"prompt": prompt})).json()
    assert tok["count"] == len(tok["tokens"]) == tokenizer.count(prompt)
    back = (await http.post(fleet2[0] + "/detokenize", json={"tokens": tok["tokens"]})).json()
    assert back["prompt"] == prompt
    done = (await http.post(fleet2[0] + "/v1/completions", json={"prompt": prompt, "max_tokens": 1})).json()
    assert done["usage"]["prompt_tokens"] == tok["count"]


async def test_invalid_json_gets_openai_error(fleet2: Fleet, http: httpx.AsyncClient) -> None:
    r = await http.post(fleet2[0] + "/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"


async def test_metrics_carry_vllm_names_and_count_requests(fleet2: Fleet, http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await http.post(fleet2[0] + "/v1/completions", json={"prompt": "count me", "max_tokens": 4})
    text = (await http.get(fleet2[0] + "/metrics")).text
    labels = {"model_name": "sim-model"}
    assert metric(text, "vllm:request_success_total", finished_reason="length", **labels) == 3
    assert metric(text, "vllm:generation_tokens_total", **labels) == 12
    assert metric(text, "vllm:time_to_first_token_seconds_count", **labels) == 3
    assert metric(text, "vllm:inter_token_latency_seconds_count", **labels) == 9
    assert metric(text, "vllm:cache_config_info", block_size="16") == 1
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                 "vllm:num_preemptions_total", "vllm:prompt_tokens_total",
                 "vllm:time_per_output_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
                 "vllm:request_queue_time_seconds_count", "vllm:request_prefill_time_seconds_count",
                 "vllm:request_decode_time_seconds_count"):
        metric(text, name, **labels)
    assert "vllm:lora_requests_info{" in text
    other = (await http.get(fleet2[1] + "/metrics")).text  # one registry per engine
    assert metric(other, "vllm:generation_tokens_total", **labels) == 0


async def test_health_is_503_until_the_model_loaded(http: httpx.AsyncClient) -> None:
    cfg = SimConfig(faults={"startup_delay_s": 1.5})  # type: ignore[arg-type]
    async with run_engine(cfg) as server:
        assert (await http.get(server.url + "/health")).status_code == 503
        busy = await http.post(server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1})
        assert busy.status_code == 503
        await asyncio.sleep(1.6)
        assert (await http.get(server.url + "/health")).status_code == 200


async def test_fleet_uses_consecutive_ports_from_a_base(http: httpx.AsyncClient) -> None:
    async with run_fleet(SimConfig(), replicas=3) as probe:
        base = probe.servers[0].port
    # the probe's first port is free again; the two after it are very likely free too
    async with run_fleet(SimConfig(), replicas=3, base_port=base) as urls:
        assert [s.port for s in urls.servers] == [base, base + 1, base + 2]
        for url in urls:
            assert (await http.get(url + "/health")).status_code == 200
