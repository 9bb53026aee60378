"""A gateway canary's life on the real control plane, as the operator steps it: a canary whose
cache fails gets no traffic; a good one gets its weight steps only once its engines are
ready, a pause apart; a promotion keeps the traffic on the new version until the main
engines serve it, then retires the canary. Traffic is what the gateway would do: the
operator's ConfigMap ``kubellm-gateway`` parsed by the gateway's own config loader.

The polls read the ConfigMap before the Deployments in each sample, so "the ConfigMap sends
the canary traffic" followed by "its Deployment is ready" is a strict check, not a race."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm.gateway.config import parse_config
from kubellm.gateway.fromspec import GATEWAY_CONFIG_KEY, GATEWAY_CONFIGMAP
from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for

from .test_operator_lifecycle import items, service, settled

pytestmark = pytest.mark.controlplane

SERVED = "chat"
POOL = f"{SERVED}-canary"
PAUSE = 4
READY_DELAY = "2s"


@dataclass(frozen=True)
class Sample:
    at: float
    weight: float
    """Percent of `chat` requests the gateway config sends to the canary pool."""
    models: frozenset[str]
    canary_ready_on: str | None
    """The model URI the canary Deployment serves with every replica ready, else None."""
    main_ready_on: str | None


def ready_on(client: httpx.Client, path: str) -> str | None:
    response = client.get(path)
    if response.status_code == 404:
        return None
    obj = response.json()
    status, want = obj.get("status") or {}, obj["spec"].get("replicas", 1)
    rolled = (status.get("observedGeneration", 0) >= obj["metadata"]["generation"] and status.get("updatedReplicas", 0) >= want
              and status.get("replicas", 0) <= want and status.get("readyReplicas", 0) >= want)
    return str(obj["spec"]["template"]["metadata"]["annotations"].get("kubellm.dev/model-uri")) if rolled else None


def sample(client: httpx.Client, ns: str) -> Sample:
    response = client.get(f"/api/v1/namespaces/{ns}/configmaps/{GATEWAY_CONFIGMAP}")
    weight, models = 0.0, frozenset[str]()
    if response.status_code == 200:
        config = parse_config(yaml.safe_load(response.json()["data"][GATEWAY_CONFIG_KEY]))
        main = next(m for m in config.models if m.name == SERVED)
        weight = sum(c.weight for c in main.canary if c.model == POOL)
        models = frozenset(m.name for m in config.models)
    deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
    return Sample(time.monotonic(), weight, models, ready_on(client, f"{deployments}/svc-canary"), ready_on(client, f"{deployments}/svc"))


def record(client: httpx.Client, ns: str, until: Any, timeout: float, what: str) -> list[Sample]:
    samples: list[Sample] = []

    def done() -> bool:
        samples.append(sample(client, ns))
        return bool(until())

    wait_for(done, timeout, what, interval=0.2)
    samples.append(sample(client, ns))
    return samples


def apply(plane: ControlPlane, path: Path, ns: str, model: str, canary: dict[str, Any] | None = None,
          labels: dict[str, str] | None = None, cache: dict[str, Any] | None = None) -> None:
    spec: dict[str, Any] = {"model": {"uri": model, "servedName": SERVED}, "engine": {"kind": "vllm"},
                            "resources": {"accelerator": {"type": "NVIDIA-L4", "count": 1}}}
    if canary is not None:
        spec["rollout"] = {"strategy": "gatewayCanary", "canary": canary}
    if cache is not None:
        spec["cache"] = cache
    # every pod takes READY_DELAY to become Ready (a kwok stage reads the label), so that the
    # main engines' roll onto the promoted model lasts long enough to be sampled
    meta: dict[str, Any] = {"name": "svc", "labels": {"kwok_ready_delay": READY_DELAY, **(labels or {})}}
    path.write_text(yaml.safe_dump({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": meta, "spec": spec}))
    kubellm(plane, "apply", str(path), "--resource", "-n", ns)


def reasons(client: httpx.Client, ns: str) -> list[str]:
    return [e["reason"] for e in items(client, f"/api/v1/namespaces/{ns}/events")]


def test_canary_weight_follows_readiness_and_steps_then_promotion_retires_it(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    path, ns = tmp_path / "svc.yaml", namespace
    apply(control_plane, path, ns, "hf://org/model-a")
    with control_plane.http() as client:
        wait_for(lambda: settled(client, ns, "svc"), 90, f"svc Available\n{operator.tail()}")
        first = sample(client, ns)
        assert first.models == {SERVED} and first.weight == 0  # the operator keeps the gateway config

        # 1. A canary whose loader never completes (a kwok pod that stalls) fails by its deadline.
        apply(control_plane, path, ns, "hf://org/model-a", {"uri": "hf://org/model-x"}, labels={"kwok_outcome": "stall"},
              cache={"loaderActiveDeadlineSeconds": 5})
        failed = wait_for(lambda: settled(client, ns, "svc", "Degraded"), 120, f"svc Degraded\n{operator.tail()}")
        assert {c["type"]: c["reason"] for c in failed["status"]["conditions"]}["Degraded"] == "LoaderFailed"
        assert failed["status"]["canary"]["weight"] == 0 and failed["status"]["canary"]["phase"] == "Waiting"
        now = sample(client, ns)
        assert now.weight == 0 and POOL in now.models and now.main_ready_on == "hf://org/model-a"

        # 2. A good canary: no traffic before its engines are ready, then 25 %, then 100 %.
        apply(control_plane, path, ns, "hf://org/model-a", {"uri": "hf://org/model-b", "steps": [25, 100], "pauseSeconds": PAUSE})
        stepping = record(client, ns, lambda: (service(client, ns, "svc").get("status") or {}).get("canary", {}).get("phase") == "Complete",
                          120, f"the canary's last step\n{operator.tail()}")
        for s in stepping:
            if s.weight > 0:
                assert s.canary_ready_on == "hf://org/model-b", s
        weights = [s.weight for s in stepping]
        assert weights == sorted(weights) and {25.0, 100.0} <= set(weights) <= {0.0, 25.0, 100.0}, weights
        at = {w: next(s.at for s in stepping if s.weight == w) for w in (25.0, 100.0)}
        assert at[100.0] - at[25.0] >= PAUSE - 0.5, at
        assert reasons(client, ns).count("CanaryWeight") >= 2
        text = kubellm(control_plane, "status", "svc", "-n", ns).stdout
        assert "canary hf://org/model-b: 100% of requests, Complete (step 2/2)" in text, text

        # 3. Promotion: the main engines move to model-b; the canary keeps the traffic until they
        #    are ready on it, then it is retired (its Deployment and Service pruned).
        apply(control_plane, path, ns, "hf://org/model-b")

        def retired() -> bool:
            obj = settled(client, ns, "svc")
            gone = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/svc-canary").status_code == 404
            return bool(obj) and "canary" not in obj["status"] and gone

        promoting = record(client, ns, retired, 120, f"the canary retired\n{operator.tail()}")
        for s in promoting:
            if s.weight < 100:
                assert s.main_ready_on == "hf://org/model-b", s
        # the hand-over was seen, not skipped: the canary kept 100 % while the main engines rolled
        handing_over = [s for s in promoting if s.weight == 100 and s.main_ready_on != "hf://org/model-b"]
        assert len(handing_over) >= 3, promoting
        assert promoting[-1].models == {SERVED} and promoting[-1].weight == 0
        assert client.get(f"/api/v1/namespaces/{ns}/services/svc-canary").status_code == 404
        # kopf posts Events on its own task: they may trail the status by a moment
        wait_for(lambda: {"CanaryPromoting", "CanaryRetired"} <= set(reasons(client, ns)), 15, "the promotion's Events")
        configmap = client.get(f"/api/v1/namespaces/{ns}/configmaps/{GATEWAY_CONFIGMAP}").json()
        owner = service(client, ns, "svc")["metadata"]["uid"]
        assert [(o["uid"], o.get("controller")) for o in configmap["metadata"]["ownerReferences"]] == [(owner, False)]
