"""The latency-predicting profile on real simulated engines: every stream trains the model
with the TTFT the gateway measured and the usage (cached tokens) the engine reported."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubellm.sim import SimConfig, run_fleet

from .conftest import model


async def _stream(client, system: str, question: str) -> None:
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        max_tokens=4, stream=True)
    async for _ in stream:
        pass


async def test_predicted_latency_learns_from_each_stream_and_keeps_the_cache(start_gateway):
    async with run_fleet(SimConfig(model="m", profile="tiny"), replicas=3) as urls:
        gw = await start_gateway({"models": [model("m", urls, profile="predicted-latency")],
                                  "resilience": {"scrapeIntervalS": 0.1}})
        client = gw.client()
        system = "You answer questions about the history of the harbour, briefly. " * 20
        for i in range(8):
            await _stream(client, system, f"question {i}")
        learner = gw.gateway.routing.latency
        assert learner.observations == 8  # every stream's TTFT trained the model
        assert learner.tokens_per_char != 0.25  # the engines' usage.prompt_tokens moved the estimate
        assert 0 < learner.mean_uncached < 100  # cached_tokens reported: only the question was new
        served = [s for s in urls.servers if s.engine.stats.prompt_tokens > 0]
        assert len(served) == 1  # idle engines, shared prompt: all to the one holding it
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        assert families["kubellm_ttft_prediction_observations"].samples[0].value == 8
        terms = {(x.labels["endpoint"], x.labels["term"]) for x in families["kubellm_ttft_model_coefficient"].samples}
        assert (served[0].url, "prefill_s_per_1k_tokens") in terms
        median = [x for x in families["kubellm_ttft_prediction_abs_error_seconds"].samples
                  if x.labels["quantile"] == "0.5"]
        assert 0 <= median[0].value < 1.0


async def test_a_stream_counts_as_a_prefill_ahead_until_its_first_token_reaches_the_gateway(start_gateway):
    """A streamed request is ahead of later ones at its endpoint (``A_e``) until the gateway
    relays its first token, however long that takes, and no longer, though it still decodes."""
    async with run_fleet(SimConfig(model="m", profile="tiny"), replicas=2) as urls:
        gw = await start_gateway({"models": [model("m", urls, profile="predicted-latency")]})
        stream = await gw.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Tell a long story. " * 50}], max_tokens=200, stream=True)
        learner = gw.gateway.routing.latency
        (ticket,) = learner._tickets.values()
        assert ticket.streamed
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break  # the first generated text is at the client: the gateway relayed it
        assert learner._tickets  # still decoding
        assert learner._ahead(ticket.endpoint, float("inf")) == (0, 0.0)  # yet no longer a prefill ahead
        await stream.close()


async def test_an_engine_reporting_an_evicted_prefix_teaches_the_index_its_horizon(start_gateway):
    """Simulated engines with a 40-block cache: a prompt routed to one engine is evicted there by
    other traffic (sent straight to that engine, as another gateway's would be); the next request
    with that prompt goes where the gateway's index says it is cached, the engine reports 0
    cached tokens, and the index's horizon for that engine drops below the prompt's age there."""
    async with run_fleet(SimConfig(model="m", profile="tiny", num_gpu_blocks=40), replicas=2) as urls:
        gw = await start_gateway({"models": [model("m", urls, profile="predicted-latency")],
                                  "resilience": {"scrapeIntervalS": 0.1}})
        client = gw.client()
        system = "You answer questions about the history of the harbour, briefly. " * 20
        await _stream(client, system, "question 0")
        holder = next(s for s in urls.servers if s.engine.stats.prompt_tokens > 0)
        index = gw.gateway.routing.prefix
        assert index.horizon(holder.url) == float("inf")  # nothing has contradicted the index yet
        direct = gw.client().with_options(base_url=holder.url + "/v1")
        for i in range(4):  # other prompts fill the holder's cache: the system prompt is evicted
            await _stream(direct, f"Unrelated instructions number {i}. " * 40, "go")
        before = holder.engine.stats.prompt_tokens
        await _stream(client, system, "question 1")
        assert holder.engine.stats.prompt_tokens > before  # routed to the engine the index believed
        horizon = index.horizon(holder.url)
        assert 0 <= horizon < float("inf")
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/metrics") as resp:
            families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        exposed = {x.labels["endpoint"]: x.value for x in families["kubellm_prefix_index_horizon_blocks"].samples}
        assert exposed[holder.url] == horizon
