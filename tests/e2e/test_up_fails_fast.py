"""`kubellm up` refuses, at once and with a message saying what to do, what it cannot run."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kubellm.local.testing import descendants_of, kubellm_executable, pid_alive

SIM = """apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: ff}
spec:
  model: {uri: "sim://tiny-chat"}
  engine: {kind: sim}
"""


def _up(tmp_path: Path, spec_text: str, *flags: str) -> tuple[int, str, float]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    started = time.monotonic()
    done = subprocess.run([kubellm_executable(), "up", str(spec), "--port", "0", "--cache-dir", str(tmp_path),
                           "--no-live", *flags], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_a_misspelt_field_names_the_field_and_the_fix(tmp_path: Path) -> None:
    code, out, _ = _up(tmp_path, SIM + "  scalling: {maxReplicas: 2}\n")
    assert code == 2
    assert "spec.scalling" in out and "check its spelling" in out
    assert "Traceback" not in out


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    done = subprocess.run([kubellm_executable(), "up", str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "cannot read" in done.stderr and "check the file's path" in done.stderr


def test_vllm_without_vllm_or_gpu_names_what_to_install(tmp_path: Path) -> None:
    code, out, elapsed = _up(tmp_path, SIM.replace('"sim://tiny-chat"', '"hf://org/model"').replace("sim}", "vllm}"))
    assert code == 1, out
    assert "engine.kind vllm needs" in out and ("pip install vllm" in out or "NVIDIA GPU" in out)
    assert elapsed < 20  # nothing was started or downloaded first


def test_llamacpp_with_a_model_file_that_is_not_there(tmp_path: Path) -> None:
    spec = SIM.replace('"sim://tiny-chat"', '"https://example.com/m.gguf"').replace("sim}", "llamacpp}")
    pytest.importorskip("llama_cpp", reason="needs llama.cpp installed to get past the prerequisite check")
    code, out, _ = _up(tmp_path, spec, "--model-file", str(tmp_path / "missing.gguf"))
    assert code == 1 and "missing.gguf does not exist" in out


def test_disaggregated_mode_is_refused_with_the_alternative(tmp_path: Path) -> None:
    spec = SIM + "  serving:\n    mode: disaggregated\n    prefill: {}\n    decode: {}\n"
    code, out, _ = _up(tmp_path, spec)
    assert code == 1, out
    assert "serving.mode disaggregated is not supported" in out and "set spec.serving.mode to standard" in out


def test_a_busy_port_names_the_flag_to_use(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SIM)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([kubellm_executable(), "up", str(spec), "--port", str(port), "--cache-dir",
                               str(tmp_path), "--no-live"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port 0" in done.stderr


def test_api_keys_in_the_spec_need_a_local_keys_file(tmp_path: Path) -> None:
    spec = SIM + "  security:\n    apiKeys: {secretRef: {name: keys, key: keys}}\n"
    code, out, _ = _up(tmp_path, spec)
    assert code == 1 and "--api-keys-file" in out and "Secret keys/keys" in out


def test_sigterm_while_the_first_replica_starts_leaves_nothing(tmp_path: Path) -> None:
    """The engine here never becomes ready (a 60 s startup delay): SIGTERM must still clean up."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SIM.replace("engine: {kind: sim}", "engine: {kind: sim, extraArgs: ['--startup-delay', '60']}"))
    proc = subprocess.Popen([kubellm_executable(), "up", str(spec), "--port", "0", "--cache-dir", str(tmp_path),
                             "--no-live"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not descendants_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = descendants_of(proc.pid)
    assert children, "the replica should have been started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert not [p for p in children if pid_alive(p)]
    assert "OpenAI base URL" not in out
