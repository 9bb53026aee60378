"""The namespace gateway on the real node (issue 14, items 1-5), deployed by the operator that
`kubellm install` runs, sized for a 2-CPU node with `install --gateway-cpu/--gateway-memory`,
in front of simulator engines in real pods. The test, on the host, reaches the gateway through
its ClusterIP Service (kube-proxy), and each pod at its IP (a gateway pod directly, the
engines' own /metrics to see which pod served what).

In order, on one cluster: streamed requests with API keys and a tenant's token limit; a
gatewayCanary split and its promotion; a new engine pod's first request after Ready and a
deleted one's last request before exit; an engine killed with no grace under load; a rolling
restart of the gateway under load; the prefix-cache hit ratio with two gateway replicas
against one. Figures go to ``TIMINGS`` and ``FIGURES`` (printed, and docs/gateway-in-cluster.md).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.harness import kubellm, wait_for
from kubellm.operator.testing.realnode import RealNode
from tests.integration.realnode import kubellm_steps as steps
from tests.integration.realnode.kubellm_steps import NS

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

S3_PORT = 9000
GATEWAY = "kubellm-gateway"
# Two gateway pods of 150m next to the operator (2 x 100m) and up to four engines of 100m:
# the node has 2 CPUs, and a loader Job asks for 1 of them.
GATEWAY_FLAGS = ("--gateway-cpu=150m", "--gateway-memory=256Mi", "--gateway-autoscale-on=none",
                 "--gateway-replicas=2", "--gateway-drain-seconds=5")
ENGINE = {"cpu": "100m", "memory": "256Mi"}
KEYS = {"team-a": "key-team-a-0123456789", "team-b": "key-team-b-0123456789"}
TEAM_B_TPM = 30
TIMINGS: dict[str, float] = {}
FIGURES: dict[str, Any] = {}
CHAT, CANARY_SVC = "chat", "canary-svc"


# -- the cluster's pieces ---------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def report(realnode_cluster: tuple[ControlPlane, RealNode]) -> Iterator[None]:
    yield
    node = realnode_cluster[1]
    TIMINGS.update({f"node: {k}": round(v, 1) for k, v in node.timings.items()})
    out = {"timings_s": TIMINGS, "figures": FIGURES}
    (node.paths.state.parent / "gateway-figures.json").write_text(json.dumps(out, indent=1))
    print("\nreal-node gateway figures:", json.dumps(out, indent=1))


@pytest.fixture(scope="module")
def installed(plane: ControlPlane, node: RealNode) -> str:
    began = time.monotonic()
    image = steps.push_images(node, ["kubellm"])["kubellm"]
    steps.install(plane, image, *GATEWAY_FLAGS)
    steps.timed(TIMINGS, "install (image push, operator Ready)", began)
    return image


@pytest.fixture(scope="module")
def s3(plane: ControlPlane, node: RealNode, installed: str) -> str:
    url = steps.start_s3(plane, node, S3_PORT)
    bucket = steps.bucket(node, S3_PORT)
    for name in ("config.json", "model.safetensors"):  # the canary's "new version": the same files elsewhere
        bucket.copy_object(Bucket="models", Key=f"tiny-chat-v2/{name}", CopySource={"Bucket": "models", "Key": f"tiny-chat/{name}"})
    keys = "".join(f"{tenant}:{key}\n" for tenant, key in KEYS.items())
    steps.post(plane, f"/api/v1/namespaces/{NS}/secrets",
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-keys"}, "stringData": {"keys": keys}})
    return url


def _chat_spec(tmp: Path, replicas: int, routing: dict[str, Any] | None = None) -> Path:
    security = {"apiKeys": {"secretRef": {"name": "api-keys", "key": "keys"},
                            "tenants": [{"name": "team-b", "tokensPerMinute": TEAM_B_TPM}]}}
    return steps.spec(tmp, CHAT, extra={"resources": ENGINE, "security": security, "routing": routing or {"profile": "default"},
                                        "scaling": {"minReplicas": replicas, "maxReplicas": replicas}})


def _apply(plane: ControlPlane, path: Path) -> None:
    kubellm(plane, "apply", str(path), "--resource", "-n", NS)


@pytest.fixture(scope="module")
def chat(plane: ControlPlane, s3: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The chat service (2 engines, API keys, team-b's token limit) and the namespace's
    gateway, both Ready: returns the gateway Service's base URL."""
    began = time.monotonic()
    _apply(plane, _chat_spec(tmp_path_factory.mktemp("chat"), 2))
    steps.wait(plane, NS, lambda: steps.available(plane, CHAT), 180, "chat Available")
    steps.wait(plane, NS, lambda: _gateway_rolled_out(plane), 120, "the gateway's 2 pods Ready")
    steps.timed(TIMINGS, "chat Available and the gateway's 2 pods Ready (apply to both)", began)
    return steps.service_url(plane, GATEWAY)


def _gateway_rolled_out(plane: ControlPlane) -> bool:
    try:
        done = steps.rolled_out(plane, NS, GATEWAY)
    except httpx.HTTPStatusError:  # not created yet
        return False
    return done and len(_live(steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}"))) == 2


def _live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]


def _engines(plane: ControlPlane, service: str, component: str = "engine") -> list[dict[str, Any]]:
    return steps.pods(plane, NS, f"kubellm.dev/service={service},app.kubernetes.io/component={component}")


def _address(pod: dict[str, Any]) -> str:
    port = next(p["containerPort"] for p in pod["spec"]["containers"][0]["ports"] if p["name"] == "http")
    return f"http://{pod['status']['podIP']}:{port}"


# -- what the engines saw ---------------------------------------------------------------
COUNTERS = ("vllm:request_success_total", "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total")


def counters(address: str) -> dict[str, float]:
    """The simulator's own counters at *address* (a pod), summed over their labels."""
    text = httpx.get(f"{address}/metrics", timeout=1).text
    totals = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def served(address: str) -> float:
    return counters(address)["vllm:request_success_total"]


def _sum(addresses: list[str]) -> dict[str, float]:
    each = [counters(a) for a in addresses]
    return {name: sum(c[name] for c in each) for name in COUNTERS}


# -- load -------------------------------------------------------------------------------
def chat_body(model: str = "tiny-chat", max_tokens: int = 4, stream: bool = True) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens, "stream": stream}


@dataclass
class Load:
    """Clients sending requests one after another until stopped. A failure is *unstarted*
    (no byte of the answer arrived: an error status or a connection error before the
    stream began) or *cut* (the stream began and did not finish)."""

    url: str
    body: dict[str, Any]
    clients: int = 4
    keep_alive: bool = True
    key: str = KEYS["team-a"]
    ok: int = 0
    slowest: float = 0.0
    unstarted: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    @property
    def failed(self) -> int:
        return len(self.unstarted) + len(self.cut)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if self.keep_alive else 0)
        # A long timeout: a request the gateway holds (waiting for a dead engine, then retrying
        # elsewhere) is slow, not lost; `slowest` shows how slow.
        with httpx.Client(timeout=90, limits=limits, headers={"Authorization": f"Bearer {self.key}"}) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                outcome = self._one(client)
                self._record(*outcome, time.monotonic() - began)

    def _one(self, client: httpx.Client) -> tuple[str, str]:
        started = False
        try:
            with client.stream("POST", f"{self.url}/v1/chat/completions", json=self.body) as response:
                if response.status_code != 200:
                    return "unstarted", f"{response.status_code} {response.read()[:200]!r}"
                text = ""
                for chunk in response.iter_text():
                    started, text = True, text + chunk
        except httpx.HTTPError as exc:
            return ("cut" if started else "unstarted"), repr(exc)
        complete = "[DONE]" in text if self.body.get("stream") else text.rstrip().endswith("}")
        return ("ok", "") if complete and '"error"' not in text else ("cut", text[-200:])

    def _record(self, outcome: str, detail: str, seconds: float) -> None:
        with self._lock:
            self.slowest = max(self.slowest, seconds)
            if outcome == "ok":
                self.ok += 1
            else:
                getattr(self, outcome).append(detail)


# -- 1: streams, keys, limits ---------------------------------------------------------------
def test_streams_reach_the_engines_through_the_gateway_service_with_keys_and_token_limits(
        plane: ControlPlane, node: RealNode, chat: str) -> None:
    gateways = _live(steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}"))
    assert len(gateways) == 2 and all(steps.ready(p) and p["spec"]["nodeName"] == node.name for p in gateways)
    assert gateways[0]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "150m", "memory": "256Mi"}
    engines = [_address(p) for p in _engines(plane, CHAT)]
    before = _sum(engines)["vllm:request_success_total"]
    client = openai.OpenAI(base_url=f"{chat}/v1", api_key=KEYS["team-a"], max_retries=0, timeout=30)
    for _ in range(6):
        chunks = list(client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, stream=True,
            stream_options={"include_usage": True}))
        assert any(c.choices and c.choices[0].delta.content for c in chunks)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert _sum(engines)["vllm:request_success_total"] - before == 6  # every stream reached a simulator pod
    unkeyed = httpx.post(f"{chat}/v1/chat/completions", json=chat_body(stream=False), timeout=30)
    assert unkeyed.status_code == 401, unkeyed.text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{chat}/v1", api_key="not-a-key-0123456789", max_retries=0).chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=2)
    served_first, limited = _until_limited(chat)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1, limited.text
    FIGURES["team-b (tokensPerMinute 30): requests served before its 429"] = served_first
    status = kubellm(plane, "status", CHAT, "-n", NS).stdout
    assert "gateway: ready (2/2 pods); clients use http://kubellm-gateway.llm.svc:80/v1" in status, status


def _until_limited(url: str) -> tuple[int, httpx.Response]:
    """team-b's requests (16 tokens each at most) until the gateway refuses one: (how many
    were served first, the refusal)."""
    headers = {"Authorization": f"Bearer {KEYS['team-b']}"}
    for n in range(8):
        response = httpx.post(f"{url}/v1/chat/completions", json=chat_body(max_tokens=16, stream=False), headers=headers, timeout=30)
        if response.status_code != 200:
            return n, response
    raise AssertionError("team-b was never limited")


# -- 4: gatewayCanary ---------------------------------------------------------------------
def _canary_spec(tmp: Path, *, promoted: bool = False) -> Path:
    extra: dict[str, Any] = {"resources": ENGINE, "scaling": {"minReplicas": 1, "maxReplicas": 1}}
    model = {"servedName": "tiny-canary"}
    if promoted:
        model["uri"] = "s3://models/tiny-chat-v2"
    else:
        extra["rollout"] = {"strategy": "gatewayCanary", "canary": {
            "uri": "s3://models/tiny-chat-v2", "weight": 20, "steps": [20, 60], "pauseSeconds": 30}}
    return steps.spec(tmp, CANARY_SVC, model=model, extra=extra)


def _canary_state(plane: ControlPlane) -> dict[str, Any]:
    return dict((steps.llmservice(plane, CANARY_SVC).get("status") or {}).get("canary") or {})


def _mounted(plane: ControlPlane, node: RealNode, model: str) -> list[dict[str, Any]]:
    """*model*'s entry in the config file each gateway pod sees (read from its volume on the
    node: the kubelet updates it some seconds after the operator writes the ConfigMap)."""
    entries = []
    for pod in _live(steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}")):
        volume = node.paths.kubelet_root / "pods" / pod["metadata"]["uid"] / "volumes" / "kubernetes.io~projected" / "config"
        config = yaml.safe_load((volume / "gateway" / "gateway.yaml").read_text())
        entries.append(next(m for m in config["models"] if m["name"] == model))
    return entries


def _mounted_weights(plane: ControlPlane, node: RealNode) -> list[float]:
    return [sum(c["weight"] for c in m.get("canary", [])) for m in _mounted(plane, node, "tiny-canary")]


def _split(plane: ControlPlane, url: str, requests: int = 200) -> float:
    """The canary's share (percent) of *requests* sent through the gateway, as the engines counted them."""
    main = [_address(p) for p in _engines(plane, CANARY_SVC)]
    canary = [_address(p) for p in _engines(plane, CANARY_SVC, "canary")]
    before = (_sum(main)["vllm:request_success_total"], _sum(canary)["vllm:request_success_total"])
    headers = {"Authorization": f"Bearer {KEYS['team-a']}"}
    body = chat_body("tiny-canary", max_tokens=1, stream=False)

    def send(n: int) -> None:
        with httpx.Client(timeout=30, headers=headers, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(n):
                assert client.post(f"{url}/v1/chat/completions", json=body).status_code == 200

    threads = [threading.Thread(target=send, args=(requests // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    to_main = _sum(main)["vllm:request_success_total"] - before[0]
    to_canary = _sum(canary)["vllm:request_success_total"] - before[1]
    assert to_main + to_canary == requests
    return 100 * to_canary / requests


def test_gateway_canary_split_follows_the_operators_weights_and_promotion_fails_no_request(
        plane: ControlPlane, node: RealNode, chat: str, tmp_path: Path) -> None:
    began = time.monotonic()
    _apply(plane, _canary_spec(tmp_path))
    for weight in (20, 60):
        steps.wait(plane, NS, lambda: _canary_state(plane).get("weight") == weight, 240, f"the operator to step the canary to {weight}%")
        wait_for(lambda: _mounted_weights(plane, node) == [weight, weight], 60, f"both gateway pods' config at {weight}%")
        time.sleep(2)  # the gateway polls its file every second
        share = _split(plane, chat)
        FIGURES[f"canary at {weight}%: live share over 200 requests (%)"] = share
        assert abs(share - weight) <= 5, (weight, share)
    steps.timed(TIMINGS, "canary: apply to both steps measured", began)
    assert _canary_state(plane)["phase"] == "Complete"
    promoting = time.monotonic()
    with Load(chat, chat_body("tiny-canary", max_tokens=8)) as load:
        _apply(plane, _canary_spec(tmp_path, promoted=True))
        steps.wait(plane, NS, lambda: not _canary_state(plane) and not _engines(plane, CANARY_SVC, "canary")
                   and steps.available(plane, CANARY_SVC), 240, "the promotion done and the canary retired")
        time.sleep(2)
    steps.timed(TIMINGS, "canary: promotion under load (apply to the canary retired)", promoting)
    FIGURES["canary promotion under load: requests served / failed"] = [load.ok, load.failed]
    assert load.ok > 20 and load.failed == 0, (load.unstarted[:5], load.cut[:5])
    assert _split(plane, chat, 40) == 0  # all traffic on the main engines, now serving the new version
    kubellm(plane, "delete", CANARY_SVC, "-n", NS, "--timeout=120", timeout=180)  # its CPU for what follows


# -- 2: endpoint churn ------------------------------------------------------------------
def test_a_new_engine_pod_gets_traffic_within_2s_of_ready_and_a_deleted_one_none_before_it_exits(
        plane: ControlPlane, chat: str, tmp_path: Path) -> None:
    old = {p["metadata"]["name"] for p in _engines(plane, CHAT)}
    with Load(chat, chat_body(stream=False), clients=4) as load:
        _apply(plane, _chat_spec(tmp_path, 3))
        ready_to_traffic = _first_traffic_after_ready(plane, old)
        victim = _live(_engines(plane, CHAT))[0]
        last_to_exit = _last_traffic_before_exit(plane, victim)
    FIGURES["new engine pod: Ready to its first request (s)"] = round(ready_to_traffic, 2)
    FIGURES["deleted engine pod: its last request to its process's exit (s)"] = round(last_to_exit, 2)
    FIGURES["endpoint churn under load: requests served / failed"] = [load.ok, load.failed]
    assert ready_to_traffic <= 2.0
    assert last_to_exit >= 1.0  # traffic stopped well before the process went
    assert load.failed == 0, (load.unstarted[:5], load.cut[:5])
    steps.wait(plane, NS, lambda: len([p for p in _engines(plane, CHAT) if steps.ready(p)]) == 3, 120, "chat back at 3 engines")


def _first_traffic_after_ready(plane: ControlPlane, old: set[str]) -> float:
    """Seconds from the test seeing the new engine pod Ready to its first served request."""
    ready_at: float | None = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        new = [p for p in _engines(plane, CHAT) if p["metadata"]["name"] not in old]
        if new and ready_at is None and steps.ready(new[0]):
            ready_at, address = time.monotonic(), _address(new[0])
        if ready_at is not None and served(address) > 0:
            return time.monotonic() - ready_at
        time.sleep(0.1)
    raise AssertionError(f"no new engine pod served within 180 s\n{steps.describe(plane, NS)}")


def _last_traffic_before_exit(plane: ControlPlane, pod: dict[str, Any]) -> float:
    """Delete *pod* (its normal grace: the simulator drains); seconds from the last request
    it served to its process no longer answering."""
    address, name = _address(pod), pod["metadata"]["name"]
    count, changed = served(address), time.monotonic()
    with plane.http() as client:
        client.delete(f"/api/v1/namespaces/{NS}/pods/{name}").raise_for_status()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            now = served(address)
        except httpx.HTTPError:
            return time.monotonic() - changed
        if now != count:
            count, changed = now, time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"{name} still answers 120 s after its deletion")


# -- 3: failures under load ---------------------------------------------------------------
def test_an_engine_killed_with_no_grace_loses_no_request_that_had_not_started_streaming(
        plane: ControlPlane, chat: str) -> None:
    pod = _live(_engines(plane, CHAT))[0]
    victim, before = pod["metadata"]["name"], served(_address(pod))
    with Load(chat, chat_body(max_tokens=16), clients=4) as load:
        time.sleep(2)
        assert served(_address(pod)) > before  # the victim was taking its share
        with plane.http() as client:
            client.delete(f"/api/v1/namespaces/{NS}/pods/{victim}", params={"gracePeriodSeconds": "0"}).raise_for_status()
        time.sleep(10)
    FIGURES["engine killed with no grace, under load: served / unstarted failed / cut mid-stream / slowest (s)"] = [
        load.ok, len(load.unstarted), len(load.cut), round(load.slowest, 1)]
    assert load.ok > 20 and load.unstarted == [], load.unstarted[:5]
    steps.wait(plane, NS, lambda: len([p for p in _engines(plane, CHAT) if steps.ready(p)]) == 3, 120, "chat back at 3 engines")


def test_a_rolling_restart_of_the_gateway_fails_no_request(plane: ControlPlane, chat: str) -> None:
    old = {p["metadata"]["name"] for p in steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}")}
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": str(time.time())}}}}}
    with Load(chat, chat_body(), clients=4) as load:
        time.sleep(1)
        began = time.monotonic()
        with plane.http() as client:
            client.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/{GATEWAY}", json=patch,
                         headers={"Content-Type": "application/strategic-merge-patch+json"}).raise_for_status()
        steps.wait(plane, NS, lambda: _gateway_rolled_out(plane) and not old & {
            p["metadata"]["name"] for p in steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}")}, 180,
            "the gateway restarted (new pods Ready, old ones gone)")
        steps.timed(TIMINGS, "gateway rolling restart under load (patch to old pods gone)", began)
        time.sleep(2)
    FIGURES["gateway rolling restart under load: served / failed"] = [load.ok, load.failed]
    assert load.ok > 50 and load.failed == 0, (load.unstarted[:5], load.cut[:5])


# -- 5: prefix-aware routing with two gateway replicas -------------------------------------
def test_prefix_cache_hit_ratio_with_two_gateway_replicas_and_one(
        plane: ControlPlane, node: RealNode, chat: str, tmp_path: Path) -> None:
    """Item 5, measured: one gateway pod (at its IP) against both behind the Service, on the
    same workload, with the `default` profile (each replica's prefix index knows only what it
    sent) and with `precisePrefix` (the simulators publish vLLM-format KV events and every
    gateway replica subscribes to every engine: the replicas route on the same state). The
    issue's bar, two replicas within 5 points of one, is asserted for `precisePrefix`, the
    configuration kubellm recommends for more than one replica; `default` is recorded only
    (docs/gateway-in-cluster.md has the figures and why it loses points)."""
    _apply(plane, _chat_spec(tmp_path, 4))
    steps.wait(plane, NS, lambda: len([p for p in _engines(plane, CHAT) if steps.ready(p)]) == 4, 120, "chat at 4 engines")
    time.sleep(2)  # the gateways' discovery has the fourth
    ratios: dict[str, tuple[float, float]] = {}
    for label, routing in (("default", None), ("precisePrefix", {"profile": "default", "precisePrefix": {}})):
        if routing is not None:
            _apply(plane, _chat_spec(tmp_path, 4, routing))
            wait_for(lambda: all(m.get("kvEventsPort") for m in _mounted(plane, node, "tiny-chat")), 90,
                     "both gateway pods' config with precise prefix routing")
            steps.wait(plane, NS, lambda: steps.rolled_out(plane, NS, CHAT) and len(
                [p for p in _live(_engines(plane, CHAT)) if steps.ready(p)]) == 4, 180, "engines rolled with their event publishers")
            time.sleep(3)  # the gateways' discovery has the new pods and their subscriptions are up
        one_gateway = _address(_live(steps.pods(plane, NS, f"app.kubernetes.io/name={GATEWAY}"))[0])
        ratios[label] = (_hit_ratio(plane, one_gateway, salt=f"one {label}"), _hit_ratio(plane, chat, salt=f"two {label}"))
        FIGURES[f"prefix-cache hit ratio, 4 engines, {label}: one gateway pod / two behind the Service (%)"] = [
            round(100 * r, 1) for r in ratios[label]]
        assert min(ratios[label]) > 0.6, (label, ratios[label])
    one, two = ratios["precisePrefix"]
    assert abs(one - two) <= 0.05, ratios


SYSTEM_PROMPTS, CONVERSATIONS, TURNS, CLIENTS = 8, 32, 4, 16


def _hit_ratio(plane: ControlPlane, url: str, salt: str) -> float:
    """bench/gateway_routing.py's shape: multi-turn chats that share a few long system
    prompts (salted: nothing cached by an earlier run matches), each turn a new connection
    (through the Service, kube-proxy picks a gateway pod per connection); the engines' own
    prefix-cache counters over the run."""
    rng = random.Random(salt)
    systems = [f"{salt} system prompt {i}: " + " ".join(rng.choice(WORDS) for _ in range(300)) for i in range(SYSTEM_PROMPTS)]
    engines = [_address(p) for p in _live(_engines(plane, CHAT))]
    before = _sum(engines)
    chats = [[{"role": "system", "content": systems[i % SYSTEM_PROMPTS]}] for i in range(CONVERSATIONS)]

    def converse(history: list[dict[str, str]], n: int) -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {KEYS['team-a']}"},
                          limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for turn in range(TURNS):
                history.append({"role": "user", "content": f"question {turn} of chat {n}: " + " ".join(rng.choice(WORDS) for _ in range(20))})
                body = {"model": "tiny-chat", "messages": history, "max_tokens": 8}
                response = client.post(f"{url}/v1/chat/completions", json=body)
                assert response.status_code == 200, response.text
                history.append({"role": "assistant", "content": response.json()["choices"][0]["message"]["content"]})

    def client(first: int) -> None:
        for n in range(first, CONVERSATIONS, CLIENTS):
            converse(chats[n], n)

    threads = [threading.Thread(target=client, args=(first,)) for first in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = _sum(engines)
    queries = after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"]
    return (after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]) / queries


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
