"""The Helm chart (charts/kubellm) with the real helm (built from its Go module by
scripts/setup/helm.sh):

- `helm lint` finds nothing to warn about;
- `helm template` with the default values gives exactly the objects `kubellm install` gives
  (the Namespace only with namespace.create), so the two cannot drift; values become operator
  flags the real `kubellm operator` parser accepts;
- `helm install`, `helm upgrade` (a changed value rolls the operator) and `helm uninstall`
  on a control plane of its own (kube-apiserver and friends from source, a kwok node: the
  operator's pods are scheduled and reported ready; no process runs in them).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from kubellm.operator import cli as operator_cli
from kubellm.operator.install import manifests
from kubellm.operator.testing import ControlPlane, GpuNodeSpec, wait_for
from tests.integration.planes import started_plane

pytestmark = pytest.mark.controlplane
ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubellm"
HELM = ROOT / ".tools" / "bin" / "helm"
NAMESPACE = "kubellm-system"


def helm(*args: str, kubeconfig: Path | None = None, timeout: float = 180) -> str:
    assert HELM.exists(), "run scripts/setup/helm.sh to build helm into .tools/bin"
    env = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "HELM_CACHE_HOME": "/tmp/helm-cache",
           "HELM_CONFIG_HOME": "/tmp/helm-config", "HELM_DATA_HOME": "/tmp/helm-data"}
    command = [str(HELM), *args] + ([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"helm {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


def template(*sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = helm("template", "kubellm", str(CHART), "--namespace", NAMESPACE, "--include-crds", *sets)
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}


def keyed(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_helm_lint_is_clean() -> None:
    out = helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in out and "[WARNING]" not in out and "[ERROR]" not in out


def test_helm_template_gives_the_objects_of_kubellm_install() -> None:
    installed = keyed(manifests(NAMESPACE))
    assert template() == {k: v for k, v in installed.items() if k[0] != "Namespace"}
    assert template("--set", "namespace.create=true") == installed


def test_values_become_flags_the_operator_accepts() -> None:
    objects = template("--set", "watchNamespaces={team-a,team-b}", "--set", "gateway.replicas=3",
                       "--set", "gateway.autoscaleOn=inFlight", "--set", "gateway.enabled=false", "--set", "resyncSeconds=5",
                       "--set", "image=registry.example.com/kubellm:dev", "--set", "replicas=3",
                       "--set", "gateway.cpu=250m", "--set", "gateway.memory=256Mi", "--set", "gateway.drainSeconds=0",
                       "--set", "gateway.targetCPUPercent=50", "--set", "gateway.targetInFlight=8",
                       "--set", "gateway.prometheusNamespace=obs")
    deployment = objects[("Deployment", "kubellm-operator")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3 and container["image"] == "registry.example.com/kubellm:dev"
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    operator_cli.register(app)
    command = typer.main.get_command(app).commands["operator"]  # type: ignore[attr-defined]
    params = command.make_context("operator", container["args"][1:]).params
    assert params["namespace"] == ["team-a", "team-b"] and params["resync"] == 5.0
    assert params["gateway"] is False and params["gateway_replicas"] == 3
    assert params["gateway_autoscale_on"] == operator_cli.AutoscaleOn.in_flight
    given = operator_cli._gateway_flags({**params, "gateway": True}).given()
    assert given == {"replicas": 3, "autoscale_on": "inFlight", "cpu": "250m", "memory": "256Mi", "drain_seconds": 0,
                     "target_cpu_percent": 50, "target_in_flight": 8, "prometheus_namespace": "obs"}
    assert {e["name"]: e.get("value") for e in container["env"]}["KUBELLM_IMAGE"] == "registry.example.com/kubellm:dev"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with started_plane(tmp_path_factory, "helm-cp") as control_plane:
        control_plane.add_nodes("cpu", 2, GpuNodeSpec(gpus=0, cpu="8", memory="32Gi"))
        yield control_plane


def operator_deployment(plane: ControlPlane) -> dict[str, Any] | None:
    with plane.http() as client:
        response = client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/kubellm-operator")
    return None if response.status_code == 404 else dict(response.json())


def rolled_out(plane: ControlPlane, replicas: int) -> dict[str, Any] | None:
    obj = operator_deployment(plane)
    status = (obj or {}).get("status") or {}
    done = (obj is not None and status.get("observedGeneration") == obj["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas and status.get("readyReplicas") == replicas
            and status.get("replicas") == replicas)
    return obj if done else None


def test_helm_install_upgrade_uninstall(plane: ControlPlane) -> None:
    kubeconfig = plane.kubeconfig
    helm("install", "kubellm", str(CHART), "--namespace", NAMESPACE, "--create-namespace", "--wait", "--timeout=120s",
         kubeconfig=kubeconfig)
    first = wait_for(lambda: rolled_out(plane, 2), 60, "the operator's 2 replicas ready")
    with plane.http() as client:
        crd = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmservices.kubellm.dev").json()
        assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
        assert client.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/kubellm-operator").status_code == 200

    helm("upgrade", "kubellm", str(CHART), "--namespace", NAMESPACE, "--set", "gateway.replicas=3", "--set", "replicas=1",
         "--wait", "--timeout=120s", kubeconfig=kubeconfig)
    second = wait_for(lambda: rolled_out(plane, 1), 60, "the operator rolled to 1 replica of the new template")
    assert second["metadata"]["generation"] > first["metadata"]["generation"]
    args = second["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--gateway-replicas=3" in args
    with plane.http() as client:
        sets = client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets").json()["items"]
    assert len(sets) == 2  # a new ReplicaSet: the pods were replaced, not patched

    helm("uninstall", "kubellm", "--namespace", NAMESPACE, "--wait", "--timeout=120s", kubeconfig=kubeconfig)
    wait_for(lambda: operator_deployment(plane) is None, 60, "the operator gone")
    with plane.http() as client:
        assert client.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/kubellm-operator").status_code == 404
        # Helm never deletes what crds/ installed: LLMServices (and their models) survive an uninstall
        assert client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmservices.kubellm.dev").status_code == 200
