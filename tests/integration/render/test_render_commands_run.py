"""The commands the renderer writes into pods really run: the engine container of sim specs
is started as rendered (only host and port moved to loopback) with the real `kubellm sim`,
and serves the model and every engine metric the rendered autoscalers, alerts and dashboard
query; the loader Job's `kubellm pull` runs as rendered (paths moved into a temp dir)
against a real S3 API (moto) with credentials read from the mounted-file layout, and the
engine's wait-for-weights init script then finds the weights."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from kubellm.render import render
from kubellm.render.storage import CREDENTIALS_DIR
from kubellm.spec import LLMService, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]
# Engine series the rendered ScaledObjects/HPA rules, alerts and dashboard read.
ENGINE_SERIES = [
    "vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket", "vllm:time_per_output_token_seconds_bucket",
    "vllm:generation_tokens_total", "vllm:prompt_tokens_total",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ok(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def engine_containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0] for o in objects if o["kind"] == "Deployment"}


def on_loopback(args: list[str], port: int) -> list[str]:
    moved = list(args)
    moved[moved.index("--host") + 1] = "127.0.0.1"
    moved[moved.index("--port") + 1] = str(port)
    return moved


def sim_specs() -> list[LLMService]:
    disaggregated = parse_spec({
        "apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "pd"},
        "spec": {"model": {"uri": "sim://pd-model"}, "engine": {"kind": "sim", "sim": {"profile": "tiny"}, "maxNumSeqs": 8},
                 "serving": {"mode": "disaggregated", "prefill": {"scaling": {"minReplicas": 1}}, "decode": {"scaling": {"minReplicas": 2}}}},
    })
    return [load_spec(ROOT / "examples" / "quickstart.yaml"), disaggregated]


@pytest.mark.parametrize("service", sim_specs(), ids=lambda s: s.name)
def test_rendered_sim_engines_start_and_serve_what_the_renderer_queries(service: LLMService) -> None:
    for name, container in engine_containers(render(service)).items():
        assert container["command"] == ["kubellm", "sim"]
        port = free_port()
        argv = [sys.executable, "-m", "kubellm.cli.main", "sim", *on_loopback(container["args"], port)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ok(f"http://127.0.0.1:{port}/health")
            models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
            assert [m["id"] for m in models["data"]][0] == service.spec.model.served_name, name
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            missing = [s for s in ENGINE_SERIES if s not in metrics]
            assert missing == [], f"{name}: the simulator does not serve {missing}"
        finally:
            stop(proc)


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ok(f"{url}/moto-api/")
        yield url
    finally:
        stop(proc)


def loader_command(loader: dict[str, Any], creds: Path, cache: Path, s3_url: str, tmp_path: Path
                   ) -> tuple[dict[str, str], list[str]]:
    """The loader container's env and args as they would run here: the Secret mounted at
    *creds*, the cache volume at *cache*, S3 at *s3_url*."""
    env = {e["name"]: e["value"].replace(CREDENTIALS_DIR, str(creds)) for e in loader["env"]}
    env |= {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin:/bin",
            "AWS_ENDPOINT_URL": s3_url, "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent"}
    return env, [a.replace("/cache/", f"{cache}/") for a in loader["args"]]


def run_kubellm(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubellm.cli.main", *args, "--progress", "none"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_rendered_loader_pulls_with_file_credentials_and_unblocks_the_engine(s3_url: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="models-bucket")
    s3.put_object(Bucket="models-bucket", Key="tiny/config.json", Body=b'{"model_type": "llama"}')
    s3.put_object(Bucket="models-bucket", Key="tiny/tokenizer.json", Body=b"{}")
    s3.put_object(Bucket="models-bucket", Key="tiny/notes.txt", Body=b"not wanted")
    service = parse_spec({
        "apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "tiny", "namespace": "llm"},
        "spec": {"model": {"uri": "s3://models-bucket/tiny", "credentials": {"name": "s3-creds"}, "allowPatterns": ["*.json"]}},
    })
    objects = render(service)
    job = next(o for o in objects if o["kind"] == "Job")["spec"]["template"]["spec"]
    loader = job["containers"][0]
    # The Secret, as the kubelet would mount it: one file per key.
    creds, cache = tmp_path / "creds", tmp_path / "cache"
    creds.mkdir()
    cache.mkdir()
    (creds / "credentials").write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env, args = loader_command(loader, creds, cache, s3_url, tmp_path)
    result = run_kubellm(args, env)
    assert result.returncode == 0, result.stderr
    (key_dir,) = cache.iterdir()
    assert sorted(p.name for p in key_dir.iterdir() if not p.name.startswith(".")) == ["config.json", "tokenizer.json"]
    # The engine pod's init container waits for exactly this directory.
    engine = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    script = engine["initContainers"][0]["args"][0].replace("/models/cache/", f"{cache}/")
    assert subprocess.run(["sh", "-c", script], timeout=10).returncode == 0
    vllm_model_path = engine["containers"][0]["args"][0]
    assert vllm_model_path == f"/models/cache/{key_dir.name}"
    # Without the mounted credentials file the same command is refused: the file was used.
    (creds / "credentials").unlink()
    args = [a.replace(str(cache), str(tmp_path / "cache2")) for a in args]
    again = run_kubellm(args, env)
    assert again.returncode != 0
    assert "credential" in again.stderr.lower()


def test_rendered_hf_loader_hands_the_mounted_token_to_pull(tmp_path: Path) -> None:
    """hf-autoscale: the loader's env and its Secret mount, laid out as the kubelet would, give
    `kubellm pull` (SourceSettings.from_env) the token, under the key the docs tell users to create."""
    from kubellm.pull.drivers.hf import TOKEN_HINT
    from kubellm.pull.options import SourceSettings

    service = load_spec(ROOT / "examples" / "hf-autoscale.yaml")
    job = next(o for o in render(service) if o["kind"] == "Job")["spec"]["template"]["spec"]
    loader = job["containers"][0]
    (mount,) = [m for m in loader["volumeMounts"] if m["mountPath"] == CREDENTIALS_DIR]
    (volume,) = [v for v in job["volumes"] if v["name"] == mount["name"]]
    # The whole Secret is mounted (no items): each of its keys is a file of that name.
    assert service.spec.model.credentials is not None
    assert volume["secret"]["secretName"] == service.spec.model.credentials.name and "items" not in volume["secret"]
    assert all("valueFrom" not in e for e in loader["env"])  # never as an environment value
    key = "HF_TOKEN"
    assert f"--from-literal={key}=" in TOKEN_HINT
    named = {e["value"].removeprefix(f"{CREDENTIALS_DIR}/") for e in loader["env"] if e["value"].startswith(f"{CREDENTIALS_DIR}/")}
    assert named <= {key}, f"the loader names files the Secret is not told to have: {named - {key}}"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / key).write_text("hf_mounted\n")
    env = {e["name"]: e["value"].replace(CREDENTIALS_DIR, str(creds)) for e in loader["env"]}
    assert SourceSettings.from_env(env).hf_token == "hf_mounted"
    # Each route alone is enough: the credentials dir, and HF_TOKEN_PATH.
    assert SourceSettings.from_env({k: v for k, v in env.items() if k != "HF_TOKEN_PATH"}).hf_token == "hf_mounted"
    assert SourceSettings.from_env({k: v for k, v in env.items() if k != "KUBELLM_CREDENTIALS_DIR"}).hf_token == "hf_mounted"
    (creds / key).unlink()
    assert SourceSettings.from_env(env).hf_token is None


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_rendered_loader_passes_allow_pickle_only_when_the_spec_sets_it(s3_url: str, tmp_path: Path, allow_pickle: bool) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="pickle-bucket")
    s3.put_object(Bucket="pickle-bucket", Key="old/pytorch_model.bin", Body=b"\x80\x04K\x01.")
    s3.put_object(Bucket="pickle-bucket", Key="old/config.json", Body=b"{}")
    model: dict[str, Any] = {"uri": "s3://pickle-bucket/old", "credentials": {"name": "s3-creds"}}
    if allow_pickle:
        model["allowPickle"] = True
    service = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "old", "namespace": "llm"},
                          "spec": {"model": model}})  # fmt: skip
    jobs = [o for o in render(service) if o["kind"] == "Job"]
    loader = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert ("--allow-pickle" in loader["args"]) is allow_pickle
    # Toggling it renames the Job (its template is immutable), within Kubernetes' 63 characters.
    assert jobs[0]["metadata"]["name"].endswith("-pkl") is allow_pickle and len(jobs[0]["metadata"]["name"]) <= 63
    # The rendered command, run: refused without the flag, pulled with it. Keys come as Secret files.
    creds, cache = tmp_path / "creds", tmp_path / "cache"
    creds.mkdir()
    (creds / "AWS_ACCESS_KEY_ID").write_text("testing\n")
    (creds / "AWS_SECRET_ACCESS_KEY").write_text("testing\n")
    env, args = loader_command(loader, creds, cache, s3_url, tmp_path)
    result = run_kubellm(args, env)
    if allow_pickle:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1 and "pickle" in result.stderr and "allowPickle" in result.stderr
