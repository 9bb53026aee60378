"""`--target kserve`, `--target inference-gateway` and `--argocd` against a real
kube-apiserver (v1.34, built from source; see docs/controlplane.md) holding the upstream
CRDs (tests/integration/render/crds: KServe v0.20.0 InferenceService and
ClusterServingRuntime, Gateway API Inference Extension v1.6.0 InferencePool, Argo CD v3.5.1
Application; descriptions stripped and unused subtrees opened, see its README).

Every object each target renders for every example it can express passes a server-side dry
run with strict field validation; a broken object is refused, so the check can fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm.operator.testing import ControlPlane
from kubellm.operator.testing.apiserver import dry_run as apiserver_dry_run
from kubellm.operator.testing.apiserver import install_crd
from kubellm.render.errors import UnexpressibleError
from kubellm.render.targets.argocd import application, with_waves
from kubellm.render.targets.select import render_target
from kubellm.spec import load_spec
from tests.integration.planes import started_plane

pytestmark = pytest.mark.controlplane
ROOT = Path(__file__).resolve().parents[3]
CRDS = Path(__file__).parent / "crds"
PLURALS = {"NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets",
           "StorageClass": "storageclasses", "Ingress": "ingresses", "ResourceQuota": "resourcequotas",
           "InferencePolicy": "inferencepolicies"}
# Custom resources of add-ons whose CRDs are not installed here (the unit tests check them
# against their schemas); every other object is sent.
NOT_INSTALLED = {"keda.sh", "monitoring.coreos.com", "argoproj.io", "leaderworkerset.x-k8s.io",
                 "gateway.networking.k8s.io", "cert-manager.io"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with started_plane(tmp_path_factory) as plane, plane.http() as http:
        for path in sorted(CRDS.glob("*.json")):
            install_crd(http, json.loads(path.read_text()))
        yield http


def dry_run(http: httpx.Client, obj: dict[str, Any]) -> httpx.Response:
    namespace = obj["metadata"].get("namespace")
    if namespace:
        http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return apiserver_dry_run(http, obj, PLURALS)


def _sent(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["apiVersion"].split("/")[0] not in NOT_INSTALLED]


def _check(http: httpx.Client, label: str, objects: list[dict[str, Any]]) -> int:
    for obj in _sent(objects):
        response = dry_run(http, obj)
        assert response.status_code == 201, f"{label}: {obj['kind']} {obj['metadata']['name']}: {response.text}"
    return len(_sent(objects))


@pytest.mark.parametrize("target", ["kserve", "inference-gateway"])
def test_every_expressible_example_passes_the_upstream_crds(client: httpx.Client, target: str) -> None:
    checked, custom = 0, set()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        try:
            objects = render_target(load_spec(path), target, "1.34").objects
        except UnexpressibleError:
            continue  # which examples a target refuses, and why, is the unit tests' business
        checked += _check(client, path.stem, objects)
        custom |= {o["kind"] for o in objects if o["apiVersion"].split("/")[0] in
                   ("serving.kserve.io", "inference.networking.k8s.io")}
    expected = {"kserve": {"ClusterServingRuntime", "InferenceService"}, "inference-gateway": {"InferencePool"}}[target]
    assert custom == expected
    assert checked >= 16


def test_a_broken_inference_service_or_pool_is_refused(client: httpx.Client) -> None:
    spec = load_spec(ROOT / "examples" / "hf-autoscale.yaml")
    isvc = render_target(spec, "kserve", "1.34").objects[-1]
    predictor = {**isvc["spec"]["predictor"], "scaleMetric": "queueDepth"}  # not one of KServe's enum
    assert dry_run(client, {**isvc, "spec": {"predictor": predictor}}).status_code == 422
    typo = {**isvc["spec"]["predictor"], "minReplica": 1}
    assert dry_run(client, {**isvc, "spec": {"predictor": typo}}).status_code in (400, 422)
    pool = next(o for o in render_target(spec, "inference-gateway", "1.34").objects if o["kind"] == "InferencePool")
    assert dry_run(client, {**pool, "spec": {**pool["spec"], "targetPorts": []}}).status_code == 422


def test_the_argocd_application_and_waved_objects_pass(client: httpx.Client) -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        objects = with_waves(render_target(load_spec(path), "kubernetes", "1.34").objects)
        app = application(objects, "https://git.example.com/platform/llm.git", f"clusters/prod/{path.stem}", path.stem)
        response = dry_run(client, app)
        assert response.status_code == 201, f"{path.stem}: {response.text}"
        _check(client, path.stem, objects)
    broken = {**app, "spec": {**app["spec"], "syncPolicy": {"automated": {"prune": "yes"}}}}
    assert dry_run(client, broken).status_code == 422
