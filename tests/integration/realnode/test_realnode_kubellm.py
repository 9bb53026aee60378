"""kubellm running for real on the real node, from its own image (scripts/image/build.sh),
as a user runs it: `kubellm install --image`, the quickstart LLMService with its model files
pulled from an S3 server by the loader Job, the engines' Service with the openai client and
`kubellm check`, an engine pod killed with no grace, a pod that cannot start, `kubellm delete`.

The tests run in order and share one cluster (one real node per machine); each step's time
goes to ``TIMINGS`` and is printed at the end (docs/realnode.md has the measured figures).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.harness import kubellm, wait_for
from kubellm.operator.podfailures import PodFailure, failures
from kubellm.local.tinygguf import write_tiny_llama
from kubellm.operator.testing.realnode import RealNode
from tests.integration.realnode import kubellm_steps as steps
from tests.integration.realnode.kubellm_steps import NS, OPERATOR_NS, ROOT

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

S3_PORT = 9000
TIMINGS: dict[str, float] = {}


def _timed(name: str, began: float) -> None:
    steps.timed(TIMINGS, name, began)


@pytest.fixture(scope="module", autouse=True)
def report_timings(realnode_cluster: tuple[ControlPlane, RealNode]) -> Iterator[None]:
    """What each step took on this run, printed and kept beside the run's logs (docs/realnode.md)."""
    yield
    steps.report_timings(realnode_cluster[1], TIMINGS, "real-node timings")


@pytest.fixture(scope="module")
def images(realnode_cluster: tuple[ControlPlane, RealNode]) -> dict[str, str]:
    """kubellm's images, pushed to the node's registry: {name: reference pods use}."""
    began = time.monotonic()
    refs = steps.push_images(realnode_cluster[1], ("kubellm", "llamacpp"))
    _timed("image push to the node's registry", began)
    return refs


@pytest.fixture(scope="module")
def installed(plane: ControlPlane, images: dict[str, str]) -> dict[str, str]:
    """`kubellm install --image`: the operator as pods, leader-elected, in a restricted namespace.
    No namespace gateway: its two pods ask for a CPU each, and the node has two in all (the
    operator's kwok tests cover the gateway's objects; these tests reach the engines)."""
    began = time.monotonic()
    steps.install(plane, images["kubellm"], f"--llamacpp-image={images['llamacpp']}", "--no-gateway")
    _timed("operator Ready (install to pods Ready)", began)
    return images


@pytest.fixture(scope="module")
def s3(plane: ControlPlane, node: RealNode) -> str:
    """moto's S3 server in the node's network namespace, with the model's files: the endpoint URL pods use."""
    return steps.start_s3(plane, node, S3_PORT)


@pytest.fixture(scope="module")
def quickstart(plane: ControlPlane, installed: dict[str, str], s3: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The quickstart (simulator engine) with its files in S3, applied for the operator."""
    spec = steps.spec(tmp_path_factory.mktemp("specs"), "quickstart")
    began = time.monotonic()
    kubellm(plane, "apply", str(spec), "--resource", "-n", NS)
    steps.wait(plane, NS, lambda: steps.loaded(plane, "quickstart"), 120, "the loader Job to complete")
    _timed("loader Job complete (apply to done)", began)
    steps.wait(plane, NS, lambda: steps.available(plane, "quickstart"), 120, "quickstart Available")
    _timed("engines Ready, LLMService Available (apply to Available)", began)
    return "quickstart"


def test_operator_runs_as_pods_with_its_service_account_and_a_lease(plane: ControlPlane, installed: dict[str, str]) -> None:
    namespace = steps.get(plane, f"/api/v1/namespaces/{OPERATOR_NS}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    live = steps.pods(plane, OPERATOR_NS, "app.kubernetes.io/name=kubellm-operator")
    pods = [p for p in live if p["metadata"].get("deletionTimestamp") is None]  # not terminating ones
    assert len(pods) == 2 and all(steps.ready(p) for p in pods)
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "kubellm-operator"
        assert pod["spec"]["containers"][0]["image"] == installed["kubellm"]
    names = {p["metadata"]["name"] for p in pods}

    def leader() -> set[str]:
        leases = steps.get(plane, f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NS}/leases")["items"]
        return names & {str(lease["spec"].get("holderIdentity")) for lease in leases}

    wait_for(leader, 60, f"an operator pod to hold the lease\n{steps.logs(plane, OPERATOR_NS, pods[0]['metadata']['name'])}")


def test_quickstart_loads_from_s3_into_the_volume_and_becomes_available(plane: ControlPlane, node: RealNode, quickstart: str) -> None:
    engines = steps.pods(plane, NS, "kubellm.dev/service=quickstart,app.kubernetes.io/component=engine")
    assert engines and all(steps.ready(p) and p["spec"]["nodeName"] == node.name for p in engines)
    claim = steps.get(plane, f"/api/v1/namespaces/{NS}/persistentvolumeclaims/quickstart-model-cache")
    volume = steps.get(plane, f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    files = {p.name for p in Path(volume["spec"]["local"]["path"]).rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors"} <= files, files
    text = kubellm(plane, "status", quickstart, "-n", NS).stdout
    assert "quickstart: Available" in text and "http://" in text, text


def test_openai_client_through_the_engines_service(plane: ControlPlane, quickstart: str) -> None:
    url = steps.service_url(plane, quickstart)
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=30)
    assert [m.id for m in client.models.list().data] == ["tiny-chat"]
    stream = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    completion = client.completions.create(model="tiny-chat", prompt="Once upon", max_tokens=8)
    assert completion.choices[0].text and completion.usage is not None
    check = kubellm(plane, "check", url, "--model=tiny-chat", "--requests=12", "--concurrency=3", check=False, timeout=180)
    assert check.returncode == 0, check.stdout + check.stderr


def test_rolling_update_under_load_fails_no_request(plane: ControlPlane, quickstart: str, tmp_path: Path) -> None:
    """A spec change that rolls the engines, under steady load from 4 clients that keep their
    connections: every request must succeed (the engines drain: sim --drain-seconds)."""
    url = f"{steps.service_url(plane, quickstart)}/v1/chat/completions"
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    stop, served, failed = threading.Event(), [0], []

    def load() -> None:
        with httpx.Client(timeout=15) as client:
            while not stop.is_set():
                try:
                    response = client.post(url, json=body)
                    if response.status_code == 200:
                        served[0] += 1
                    else:
                        failed.append(f"{response.status_code}")
                except httpx.HTTPError as exc:
                    failed.append(repr(exc))

    clients = [threading.Thread(target=load) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(1)
        began = time.monotonic()
        spec = steps.spec(tmp_path, quickstart, profile="llama-3.1-70b-h100-tp4")
        kubellm(plane, "apply", str(spec), "--resource", "-n", NS)
        steps.wait(plane, NS, lambda: _rolled(plane, quickstart), 120, "the engines rolled")
        _timed("rolling update (apply to the old pod gone)", began)
        time.sleep(2)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert served[0] > 50 and failed == [], f"{len(failed)} of {served[0] + len(failed)} requests failed: {failed[:5]}"


def _rolled(plane: ControlPlane, name: str) -> bool:
    deployment = steps.get(plane, f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
    status, replicas = deployment.get("status", {}), deployment["spec"]["replicas"]
    pods = steps.pods(plane, NS, f"kubellm.dev/service={name},app.kubernetes.io/component=engine")
    return bool(
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == status.get("readyReplicas") == replicas
        and len(pods) == replicas
        and "70b" in json.dumps(deployment["spec"]["template"])
    )


def test_engine_pod_killed_with_no_grace_is_replaced_and_serves(plane: ControlPlane, quickstart: str) -> None:
    selector = "kubellm.dev/service=quickstart,app.kubernetes.io/component=engine"
    victim = steps.pods(plane, NS, selector)[0]["metadata"]["name"]
    began = time.monotonic()
    with plane.http() as client:
        client.delete(f"/api/v1/namespaces/{NS}/pods/{victim}", params={"gracePeriodSeconds": "0"}).raise_for_status()

    def replaced() -> bool:
        return any(steps.ready(p) and p["metadata"]["name"] != victim for p in steps.pods(plane, NS, selector))

    steps.wait(plane, NS, replaced, 90, "a replacement engine pod Ready")
    _timed("engine pod killed with no grace to replacement Ready", began)
    openai = OpenAI(base_url=f"{steps.service_url(plane, quickstart)}/v1", api_key="unused", timeout=30)
    assert wait_for(lambda: _try_chat(openai), 30, "the replacement to serve")


def _try_chat(client: OpenAI) -> str:
    try:
        reply = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    except Exception:  # noqa: BLE001 - any failure means: not serving yet, poll again
        return ""
    return reply.choices[0].message.content or "(empty)"


# name, the spec's change, the container that fails, its reasons, what the report must quote
CANNOT_START = [
    ("crashing", {"engine": {"extraArgs": ["--no-such-option"]}}, "engine", ("CrashLoopBackOff", "Error"), "--no-such-option"),
    ("no-image", {"engine": {"image": "localhost:5000/kubellm-missing:1"}}, "engine", ("ImagePullBackOff", "ErrImagePull"),
     "kubellm-missing"),
    ("no-object", {"model": {"uri": "s3://models/no-such-model"}}, "pull", ("CrashLoopBackOff", "Error"), "no-such-model"),
]


@pytest.mark.parametrize(("name", "change", "container", "reasons", "quoted"), CANNOT_START, ids=[c[0] for c in CANNOT_START])
def test_a_pod_that_cannot_start_is_explained(
    plane: ControlPlane, installed: dict[str, str], s3: str, tmp_path: Path,
    name: str, change: dict[str, dict[str, Any]], container: str, reasons: tuple[str, ...], quoted: str,
) -> None:
    kubellm(plane, "apply", str(steps.spec(tmp_path, name, **change)), "--resource", "-n", NS)
    try:
        found = steps.wait(plane, NS, lambda: _failing(plane, name, container), 150, f"{name}: container {container} failing")
        status = kubellm(plane, "status", name, "-n", NS, check=False).stdout
        doctor = kubellm(plane, "doctor", "-n", NS, check=False)
        for report in (status, doctor.stdout):
            for expected in (f"pod {found.pod}, container {container}", quoted, "what to do"):
                assert expected in report, f"{expected!r} missing from:\n{report}"
            assert any(reason in report for reason in reasons), report
        assert doctor.returncode == 3  # a failing pod blocks
    finally:
        kubellm(plane, "delete", name, "-n", NS, "--timeout=120", timeout=180)


def _failing(plane: ControlPlane, name: str, container: str) -> PodFailure | None:
    """The failure of *container* once the kubelet reports one (and, for a crash, has its log)."""
    for failure in failures(steps.pods(plane, NS, f"kubellm.dev/service={name}")):
        if failure.container == container and (failure.reason not in ("Error", "CrashLoopBackOff") or failure.restarts >= 1):
            return failure
    return None


def test_delete_leaves_nothing_on_the_node(plane: ControlPlane, node: RealNode, quickstart: str) -> None:
    uids = {p["metadata"]["uid"] for p in steps.pods(plane, NS, "kubellm.dev/service=quickstart")}
    assert uids
    kubellm(plane, "delete", quickstart, "-n", NS, "--timeout=120", timeout=180)
    assert steps.pods(plane, NS, "kubellm.dev/service=quickstart") == []

    def containers_gone() -> bool:
        listing = subprocess.run(
            ["ctr", f"--address={node.paths.containerd_socket}", "-n", "k8s.io", "containers", "list", "-q"], capture_output=True, text=True
        ).stdout
        labels = subprocess.run(
            ["ctr", f"--address={node.paths.containerd_socket}", "-n", "k8s.io", "containers", "info", *listing.split()],
            capture_output=True, text=True,
        ).stdout if listing.split() else ""
        return not any(uid in labels for uid in uids)

    wait_for(containers_gone, 60, "the service's containers gone from containerd")

    def claim_gone() -> bool:
        with plane.http() as client:
            return client.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/quickstart-model-cache").status_code == 404

    # The spec asks for no StorageClass with reclaimPolicy Retain: the cache goes with the service.
    wait_for(claim_gone, 60, "the cache claim deleted")
    pod_dirs = {p.name for p in (node.paths.kubelet_root / "pods").iterdir()} if (node.paths.kubelet_root / "pods").exists() else set()
    wait_for(lambda: not (uids & {p.name for p in (node.paths.kubelet_root / "pods").iterdir()}), 60, f"pod directories gone: {pod_dirs}")




def _gguf_cpu(tmp: Path, uri: str) -> Path:
    """examples/gguf-cpu.yaml as this node can run it: the tiny GGUF from S3, one replica of a
    CPU the node has, a ReadWriteOnce cache (the harness's local volumes), no instance type."""
    body = yaml.safe_load((ROOT / "examples" / "gguf-cpu.yaml").read_text())
    spec = body["spec"]
    body["metadata"]["namespace"] = NS
    spec["model"].update(uri=uri, credentials={"name": "s3"})
    spec["cache"] = {"size": "1Gi"}
    spec["engine"].update(maxModelLen=256, maxNumSeqs=1, llamacpp={"threads": 1})
    spec["resources"] = {"cpu": "500m", "memory": "1Gi"}
    spec["scaling"] = {"minReplicas": 1, "maxReplicas": 1}
    path = tmp / "gguf-cpu.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_gguf_cpu_example_generates_tokens_with_llama_cpp(
    plane: ControlPlane, node: RealNode, installed: dict[str, str], s3: str, tmp_path: Path,
) -> None:
    """The gguf-cpu example in kubellm's llama.cpp image (`install --llamacpp-image`): the loader
    pulls a tiny real GGUF (random weights) from S3, llama.cpp loads it and generates tokens."""
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    steps.bucket(node, S3_PORT).put_object(Bucket="models", Key="tiny-gguf/tiny.gguf", Body=model.read_bytes())
    spec = _gguf_cpu(tmp_path, "s3://models/tiny-gguf/tiny.gguf")
    name = yaml.safe_load(spec.read_text())["metadata"]["name"]
    served = yaml.safe_load(spec.read_text())["spec"]["model"]["servedName"]
    began = time.monotonic()
    kubellm(plane, "apply", str(spec), "--resource", "-n", NS)
    try:
        steps.wait(plane, NS, lambda: steps.loaded(plane, name), 120, "the gguf-cpu loader Job to complete")
        _timed("gguf-cpu: loader Job complete (apply to done)", began)
        steps.wait(plane, NS, lambda: steps.available(plane, name), 180, "gguf-cpu Available (llama.cpp Ready)")
        _timed("gguf-cpu: llama.cpp engine Ready (apply to Available)", began)
        engines = steps.pods(plane, NS, f"kubellm.dev/service={name},app.kubernetes.io/component=engine")
        assert engines and all(steps.ready(p) and p["spec"]["containers"][0]["image"] == installed["llamacpp"] for p in engines)
        client = OpenAI(base_url=f"{steps.service_url(plane, name)}/v1", api_key="unused", timeout=60)
        asked = time.monotonic()
        reply = client.chat.completions.create(model=served, messages=[{"role": "user", "content": "Hello"}], max_tokens=8)
        _timed("gguf-cpu: first chat completion", asked)
        assert reply.usage is not None and reply.usage.completion_tokens > 0, reply
    finally:
        kubellm(plane, "delete", name, "-n", NS, "--timeout=120", timeout=180)
