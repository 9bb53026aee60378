"""The NetworkPolicies kubellm renders, enforced on the real node (issue 14 item 6): kube-router's
network-policy controller (the harness's ``network_policy=True``) filters the node's pod traffic.

As a user runs it: `kubellm install` with a small namespace gateway, the quickstart LLMService
(simulator engine, model files from S3) applied for the operator, first with its
NetworkPolicies turned off, then on. Probe pods (the harness's busybox image) in three places
keep trying each path and print one line a round:

- ``outside``: a namespace no policy names;
- ``llm``: a pod beside the gateway and engines, without the gateway's labels (a client);
- ``monitoring``: the Prometheus namespace of the rendered policies.

With the engines' policies off, the outside pod reaches the engines (so the test would catch a
missing policy). With them on: the outside pod reaches neither the engines nor the gateway's
metrics, the client reaches the gateway but not the engines, the gateway reaches the engines
(a chat completion through it), and the monitoring pod scrapes both. Finally the engine's
rules are removed as ``realnode clean`` removes them, and the outside pod gets through again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubellm.operator.testing import ControlPlane, netpolicy
from kubellm.operator.testing.harness import kubellm, wait_for
from kubellm.operator.testing.realnode import NODE_IMAGES, RealNode, RealNodeError, image_ref, real_cluster
from tests.integration.realnode import kubellm_steps as steps
from tests.integration.realnode.kubellm_steps import NS

pytestmark = [pytest.mark.realnode, pytest.mark.controlplane]

NAME = "quickstart"
# The loader's rendered egress allows 80 and 443 only; policies are matched after the Service's
# address translation, so moto must listen on 80 itself (9000 would be refused).
S3_PORT = 80
OUTSIDE, MONITORING = "outside", "monitoring"
TIMINGS: dict[str, float] = {}
GATEWAY_FLAGS = ("--gateway-replicas=1", "--gateway-autoscale-on=none", "--gateway-cpu=250m", "--gateway-memory=512Mi")
CHAT = json.dumps({"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
PROBER = """
probe() {  # busybox's own timeout: its wget -T crashes (Debian's busybox-static 1.35)
  out=$(busybox timeout 5 wget -q -O /dev/null "$@" 2>&1); rc=$?
  [ $rc = 0 ] && { echo ok; return; }
  case "$out" in *refused*) echo refused;; *) if [ $rc -ge 124 ]; then echo timeout; else echo error; fi;; esac
}
while true; do
  echo "round engine=$(probe $ENGINE/v1/models) engine-metrics=$(probe $ENGINE/metrics)" \\
    "gateway-metrics=$(probe $GATEWAY/metrics)" \\
    "gateway-chat=$(probe --header=Content-Type:application/json --post-data="$CHAT" $GATEWAY/v1/chat/completions)"
  sleep 1
done
"""
ALLOWED, BLOCKED = "ok", ("refused", "timeout")


@pytest.fixture(scope="module")
def realnode_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, RealNode]]:
    """This module's own cluster: a real node that enforces NetworkPolicies."""
    workdir = tmp_path_factory.mktemp("realnode-netpol")
    try:
        with real_cluster(workdir, images=[NODE_IMAGES / "testbox.oci.tar"], network_policy=True) as (plane, node):
            yield plane, node
    except RealNodeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def report_timings(realnode_cluster: tuple[ControlPlane, RealNode]) -> Iterator[None]:
    yield
    steps.report_timings(realnode_cluster[1], TIMINGS, "real-node netpol timings")


def _spec(tmp: Path, policies: bool) -> Path:
    return steps.spec(tmp, NAME, extra={"security": {"networkPolicy": {"enabled": policies}}})


def _gateway_ready(plane: ControlPlane) -> bool:
    with plane.http() as client:
        found = client.get(f"/apis/apps/v1/namespaces/{NS}/deployments/kubellm-gateway").status_code == 200
    return found and steps.rolled_out(plane, NS, "kubellm-gateway")


@pytest.fixture(scope="module")
def unguarded(plane: ControlPlane, node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator with its namespace gateway, and the quickstart with its policies off."""
    began = time.monotonic()
    images = steps.push_images(node, ("kubellm",))
    steps.install(plane, images["kubellm"], *GATEWAY_FLAGS)
    steps.timed(TIMINGS, "operator Ready (push and install)", began)
    steps.start_s3(plane, node, S3_PORT)
    tmp = tmp_path_factory.mktemp("specs")
    began = time.monotonic()
    kubellm(plane, "apply", str(_spec(tmp, policies=False)), "--resource", "-n", NS)
    steps.wait(plane, NS, lambda: steps.available(plane, NAME), 180, "quickstart Available")
    steps.wait(plane, NS, lambda: _gateway_ready(plane), 120, "the namespace gateway Ready")
    steps.timed(TIMINGS, "quickstart Available and gateway Ready (apply)", began)
    return tmp


@pytest.fixture(scope="module")
def probers(plane: ControlPlane, unguarded: Path) -> dict[str, tuple[str, str]]:
    """One probe pod per place: {place: (namespace, pod)}."""
    env = {"ENGINE": steps.service_url(plane, NAME), "GATEWAY": steps.service_url(plane, "kubellm-gateway"), "CHAT": CHAT}
    places = {"outside": (OUTSIDE, "prober"), "client": (NS, "client-prober"), "monitoring": (MONITORING, "prober")}
    for ns in (OUTSIDE, MONITORING):
        steps.namespace(plane, ns)
    for ns, pod in places.values():
        steps.post(plane, f"/api/v1/namespaces/{ns}/pods", _prober(pod, env))
    for ns, pod in places.values():
        steps.wait(plane, ns, lambda: _rounds(plane, ns, pod), 60, f"probe pod {ns}/{pod} reporting")
    return places


def _prober(name: str, env: dict[str, str]) -> dict[str, Any]:
    """A restricted pod that tries every path each second and prints one line a round."""
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"name": "probe", "image": image_ref(NODE_IMAGES / "testbox.oci.tar"), "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", PROBER], "env": [{"name": k, "value": v} for k, v in env.items()], "securityContext": security}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "netpol-probe"}},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}}


def _rounds(plane: ControlPlane, ns: str, pod: str, last: int = 3) -> list[dict[str, str]]:
    """The probe pod's last complete rounds, newest last: [{path: ok|refused|timeout|error}]."""
    with plane.http() as client:
        response = client.get(f"/api/v1/namespaces/{ns}/pods/{pod}/log", params={"tailLines": str(last + 1)})
    if response.status_code != 200:
        return []
    lines = [line for line in response.text.splitlines() if line.startswith("round ") and line.count("=") == 4]
    return [dict(part.split("=", 1) for part in line.split()[1:]) for line in lines[-last:]]


def _matches(found: dict[str, str], expected: dict[str, bool]) -> bool:
    return all((found.get(path) == ALLOWED) if allowed else (found.get(path) in BLOCKED) for path, allowed in expected.items())


def _settle(plane: ControlPlane, place: tuple[str, str], expected: dict[str, bool], timeout: float = 60) -> dict[str, str]:
    """Wait until two rounds in a row of the probe at *place* show *expected* (path -> allowed);
    returns the last one. On a timeout, the failure shows the last rounds."""
    ns, pod = place

    def steady() -> dict[str, str] | None:
        rounds = _rounds(plane, ns, pod)
        return rounds[-1] if len(rounds) >= 2 and all(_matches(r, expected) for r in rounds[-2:]) else None

    try:
        found: dict[str, str] = wait_for(steady, timeout, f"{ns}/{pod}: {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast rounds: {_rounds(plane, ns, pod)}") from None
    return found


@pytest.fixture(scope="module")
def guarded(plane: ControlPlane, unguarded: Path, probers: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The same quickstart with its NetworkPolicies on (the operator applies them)."""
    began = time.monotonic()
    kubellm(plane, "apply", str(_spec(unguarded, policies=True)), "--resource", "-n", NS)
    steps.wait(plane, NS, lambda: {"quickstart-default-deny", "quickstart-engine"} <= _policies(plane), 60,
               "the engines' NetworkPolicies applied")
    steps.timed(TIMINGS, "policies on: apply to the engines' NetworkPolicies created (operator)", began)
    _settle(plane, probers["outside"], {"engine": False})
    steps.timed(TIMINGS, "policies on: apply to the outside pod refused", began)
    return probers


def _policies(plane: ControlPlane) -> set[str]:
    return {p["metadata"]["name"] for p in steps.get(plane, f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies")["items"]}


def test_without_the_engines_policies_an_outside_pod_reaches_them(
    plane: ControlPlane, node: RealNode, probers: dict[str, tuple[str, str]],
) -> None:
    """What the test would see with a policy missing: the engines answer anyone. (The
    gateway's own policy is already there: its metrics are closed to the outside pod.)"""
    assert "iptables chain KUBE-ROUTER-FORWARD" in netpolicy.state(node.network)
    assert _policies(plane) == {"kubellm-gateway"}
    _settle(plane, probers["outside"], {"engine": True, "engine-metrics": True, "gateway-metrics": False})


def test_outside_pod_reaches_neither_the_engines_nor_the_gateway_metrics(guarded: dict[str, tuple[str, str]], plane: ControlPlane) -> None:
    found = _settle(plane, guarded["outside"], {"engine": False, "engine-metrics": False, "gateway-metrics": False, "gateway-chat": False})
    assert found["engine"] == "refused", found  # rejected at once (kube-router's REJECT), not left to time out


def test_client_beside_the_gateway_reaches_it_and_through_it_the_engines_but_not_the_engines_directly(
    guarded: dict[str, tuple[str, str]], plane: ControlPlane,
) -> None:
    """client -> gateway and gateway -> engine: a chat completion through the gateway's Service."""
    _settle(plane, guarded["client"], {"gateway-chat": True, "engine": False, "engine-metrics": False})


def test_monitoring_namespace_scrapes_the_engines_and_the_gateway(guarded: dict[str, tuple[str, str]], plane: ControlPlane) -> None:
    _settle(plane, guarded["monitoring"], {"engine-metrics": True, "gateway-metrics": True})


def test_the_service_stays_available_under_its_policies(guarded: dict[str, tuple[str, str]], plane: ControlPlane) -> None:
    """The kubelet's probes (from the node) still pass, so the engines stay Ready."""
    assert steps.available(plane, NAME)
    engines = steps.pods(plane, NS, f"kubellm.dev/service={NAME},app.kubernetes.io/component=engine")
    assert engines and all(steps.ready(p) for p in engines)


def test_clean_removes_the_engines_rules_and_the_outside_pod_gets_through(
    guarded: dict[str, tuple[str, str]], plane: ControlPlane, node: RealNode,
) -> None:
    """What the harness's stop and ``realnode clean`` run (``netpolicy.cleanup``), with the
    engine stopped first: no chain or set of it is left, and nothing filters any more."""
    assert netpolicy.state(node.network)
    node.stop_process("kube-router")
    began = time.monotonic()
    assert netpolicy.cleanup(node.network) == []
    steps.timed(TIMINGS, "policy engine's rules and sets removed", began)
    _settle(plane, guarded["outside"], {"engine": True, "engine-metrics": True, "gateway-metrics": True})
