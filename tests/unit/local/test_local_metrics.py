"""Engine metrics normalised to one record: vLLM names and llama.cpp names alike."""

from __future__ import annotations

from kubellm.local.metrics import ReplicaMetrics, parse_metrics

VLLM = """# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m",engine="0"} 3.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",engine="0"} 2.0
vllm:num_requests_running{model_name="m",engine="1"} 1.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m"} 0.25
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.99
"""

LLAMA = """# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 4
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.5
"""


def test_vllm_names_summed_over_labels_and_the_current_kv_name_preferred() -> None:
    assert parse_metrics(VLLM) == ReplicaMetrics(waiting=3, running=3, kv_usage=0.25)


def test_llamacpp_names() -> None:
    assert parse_metrics(LLAMA) == ReplicaMetrics(waiting=4, running=2, kv_usage=0.5)


def test_nothing_known_is_zero() -> None:
    assert parse_metrics("# TYPE other gauge\nother 7\n") == ReplicaMetrics()
