"""Engine command lines are data: what each engine kind is started with, per spec."""

from __future__ import annotations

import sys
from pathlib import Path

from kubellm.local.engines import llamacpp_launch, sim_launch, vllm_launch
from kubellm.spec import LLMService, load_spec_text


def _service(engine: str, uri: str = "sim://tiny-chat", extra: str = "") -> LLMService:
    return load_spec_text(
        "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: e}\n"
        f"spec:\n  model: {{uri: '{uri}', servedName: served}}\n  engine:\n    kind: {engine}\n{extra}"
    )


def test_sim_runs_this_interpreters_kubellm_with_the_spec_options() -> None:
    launch = sim_launch(_service("sim", extra="    maxModelLen: 2048\n    sim: {profile: tiny, fixedTtftMs: 5, "
                                               "fixedTpotMs: 1}\n"), "127.0.0.1", 4321)
    assert launch.argv[:4] == (sys.executable, "-m", "kubellm.cli.main", "sim")
    args = " ".join(launch.argv[4:])
    assert "--host 127.0.0.1 --port 4321 --model served --profile tiny" in args
    assert "--fixed-ttft-ms 5.0 --fixed-tpot-ms 1.0" in args and "--max-model-len 2048" in args
    assert (launch.ready_path, launch.metrics_path) == ("/health", "/metrics")


def test_sim_default_profile_is_the_specs() -> None:
    assert "--profile llama-3.1-8b-h100" in " ".join(sim_launch(_service("sim"), "127.0.0.1", 1).argv)


def test_llamacpp_python_server_runs_through_the_health_and_metrics_wrapper() -> None:
    service = _service("llamacpp", "https://h.example/m.gguf", "    maxModelLen: 512\n    llamacpp: {threads: 2}\n")
    launch = llamacpp_launch(service, Path("/m/m.gguf"), "127.0.0.1", 9, "llama-cpp-python")
    assert launch.argv[:3] == (sys.executable, "-m", "kubellm.local.llamacpp_server")
    args = " ".join(launch.argv)
    assert "--model /m/m.gguf" in args and "--model_alias served" in args and "--n_ctx 512" in args
    assert "--n_threads 2" in args
    assert (launch.ready_path, launch.metrics_path) == ("/health", "/metrics")


def test_llama_server_binary_exports_metrics() -> None:
    service = _service("llamacpp", "https://h.example/m.gguf", "    maxNumSeqs: 4\n")
    launch = llamacpp_launch(service, Path("/m.gguf"), "127.0.0.1", 9, "llama-server")
    assert launch.argv[0] == "llama-server" and "--metrics" in launch.argv
    assert "--parallel 4" in " ".join(launch.argv) and "--alias served" in " ".join(launch.argv)
    assert launch.metrics_path == "/metrics"


def test_vllm_gets_the_serving_options() -> None:
    service = _service("vllm", "hf://org/model", "    maxModelLen: 8192\n    extraArgs: ['--seed', '1']\n")
    launch = vllm_launch(service, Path("/cache/model"), "127.0.0.1", 9)
    args = " ".join(launch.argv)
    assert args.startswith("vllm serve /cache/model --host 127.0.0.1 --port 9 --served-model-name served")
    assert "--max-model-len 8192" in args and "--enable-prefix-caching" in args and args.endswith("--seed 1")
