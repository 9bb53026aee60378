"""`kubellm sim` as a user types it: a fleet on consecutive ports, clean SIGTERM, bad options."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

KUBELLM = [sys.executable, "-c", "from kubellm.cli.main import main; main()"]


def _free_base(n: int) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n < 65000 and all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no block of free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ready(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stderr is not None
    urls = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if m := re.match(r"serving (\S+)", line):
            urls.append(m.group(1))
        if line.startswith("ready:"):
            return urls
    raise AssertionError(f"kubellm sim did not become ready (exit {proc.poll()})")


def test_fleet_serves_on_consecutive_ports_and_stops_on_sigterm() -> None:
    base = _free_base(3)
    proc = subprocess.Popen([*KUBELLM, "sim", "--port", str(base), "--replicas", "3", "--model", "demo",
                             "--fixed-ttft-ms", "10", "--fixed-tpot-ms", "1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        urls = _wait_ready(proc)
        assert urls == [f"http://127.0.0.1:{base + i}" for i in range(3)]
        for url in urls:
            assert httpx.get(url + "/health").status_code == 200
        r = httpx.post(urls[2] + "/v1/chat/completions",
                       json={"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
        assert 'vllm:num_requests_running{engine="2",model_name="demo"}' in httpx.get(urls[2] + "/metrics").text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_options_exit_2_naming_the_problem() -> None:
    cases = [
        (["--profile", "gpt-9"], "unknown sim profile"),
        (["--fixed-ttft-ms", "5"], "fixed_tpot_ms"),
        (["--error-rate", "2"], "--error-rate: Input should be less than or equal to 1"),
        (["--kv-events-format", "json"], "--kv-events-format must be map or array"),
        (["--prefix-caching-hash-algo", "md5"], "vLLM offers sha256, sha256_cbor, xxhash, xxhash_cbor"),
    ]
    for args, needle in cases:
        done = subprocess.run([*KUBELLM, "sim", "--port", "0", *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr, (args, done.stderr)


def test_vllm_style_flags_and_kv_events_config() -> None:
    """vLLM's own flag names work, KV events go where --kv-events-config says, and blocks are
    named with the algorithm and PYTHONHASHSEED given, as vLLM names them."""
    import msgpack
    import zmq

    from kubellm.approxtok import encode
    from kubellm.kvhash import BlockHasher
    from kubellm.sim.kvcache import BlockStored
    from kubellm.sim.kvevents import decode_batch

    base, events_port = _free_base(1), _free_base(1)
    config = f'{{"enable_kv_cache_events": true, "publisher": "zmq", "endpoint": "tcp://*:{events_port}", "topic": "kv"}}'
    proc = subprocess.Popen([*KUBELLM, "sim", "--port", str(base), "--served-model-name", "m",
                             "--num-gpu-blocks-override", "64", "--kv-events-config", config,
                             "--prefix-caching-hash-algo", "xxhash_cbor"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": "3"})
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    try:
        (url,) = _wait_ready(proc)
        sub.connect(f"tcp://127.0.0.1:{events_port}")
        sub.setsockopt(zmq.SUBSCRIBE, b"kv")
        sub.setsockopt(zmq.RCVTIMEO, 10_000)
        time.sleep(0.5)  # ZMQ slow joiner
        prompt = "one two three " * 20
        r = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": prompt, "max_tokens": 2})
        assert r.status_code == 200
        topic, _seq, payload = sub.recv_multipart()
        assert topic == b"kv" and decode_batch(payload)[1]
        stored = [h for e in decode_batch(payload)[1] if isinstance(e, BlockStored) for h in e.block_hashes]
        expected = BlockHasher("xxhash_cbor", "3", 16).event_hashes(encode(prompt))
        assert stored[:len(expected)] == expected
        assert isinstance(msgpack.unpackb(payload)[1][0], dict)  # vLLM >= 0.26: tagged-map events
        assert 'num_gpu_blocks="64"' in httpx.get(url + "/metrics").text
    finally:
        sub.close(linger=0)
        ctx.term()
        proc.terminate()
        proc.wait(15)
