"""The real node's metrics stack as data (operator/testing/prometheus.py, adapter.py): the
scrape job made from kubellm's rendered PodMonitor is one Prometheus accepts (promtool) and
keeps the service's engine pods with the labels kubellm's queries select on; the discovered
targets carry the labels Kubernetes discovery gives; the adapter's config is the rendered
rules; its APIService points at its one endpoint."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.operator.testing.adapter import CUSTOM_METRICS, AdapterError, rules_from_configmaps
from kubellm.operator.testing.keda import EXTERNAL_METRICS, KedaError, crds
from kubellm.operator.testing.prometheus import PrometheusError, monitored_namespaces, pod_targets, sanitize, scrape_config
from kubellm.render import render
from kubellm.spec import parse_spec

TARGETS = Path("/state/targets.yaml")


def rendered(backend: str = "hpa") -> dict[str, dict[str, Any]]:
    service = parse_spec({
        "apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {
            "model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}, "observability": {"scrapeIntervalSeconds": 5},
            "scaling": {"maxReplicas": 3, "signal": "runningRequests", "backend": backend},
        },
    })
    return {o["kind"]: o for o in render(service)}


def test_scrape_job_from_the_rendered_pod_monitor() -> None:
    monitor = rendered()["PodMonitor"]
    [job] = scrape_config(monitor, TARGETS)
    assert job["scrape_interval"] == "5s" and job["metrics_path"] == "/metrics"
    assert job["file_sd_configs"] == [{"files": [str(TARGETS)], "refresh_interval": "1s"}]
    assert monitored_namespaces(monitor) == ["llm"]
    keeps = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r["action"] == "keep"}
    instance = ("__meta_kubernetes_pod_label_app_kubernetes_io_instance", "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_instance")
    assert keeps[instance] == "(chat);true"
    assert keeps[("__meta_kubernetes_pod_container_port_name",)] == "http"
    targets = {r["target_label"] for r in job["relabel_configs"] if r["action"] == "replace"}
    # What the adapter rules (namespace, pod) and kubellm's PromQL (the sanitised pod labels) select on.
    assert {"namespace", "pod", "app_kubernetes_io_instance", "app_kubernetes_io_component"} <= targets


def test_prometheus_accepts_the_scrape_job(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": scrape_config(rendered()["PodMonitor"], tmp_path / "targets.yaml")}))
    result = subprocess.run(["promtool", "check", "config", "--syntax-only", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_service_monitor_or_an_unknown_operator_is_refused() -> None:
    monitor = rendered()["PodMonitor"]
    with pytest.raises(PrometheusError, match="PodMonitor"):
        scrape_config({**monitor, "kind": "ServiceMonitor"}, TARGETS)
    odd = {**monitor, "spec": {**monitor["spec"], "selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}}
    with pytest.raises(PrometheusError, match="Exists"):
        scrape_config(odd, TARGETS)


def test_sanitize_names_labels_as_prometheus_does() -> None:
    assert sanitize("app.kubernetes.io/component") == "app_kubernetes_io_component"


def test_discovered_targets_carry_the_pod_roles_labels() -> None:
    engine = {
        "metadata": {"name": "chat-1", "namespace": "llm", "labels": {"app.kubernetes.io/instance": "chat"}},
        "spec": {"nodeName": "n", "containers": [{"name": "engine", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"podIP": "10.214.0.9", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    pending = {**engine, "status": {"phase": "Pending"}}
    [group] = pod_targets([engine, pending])
    assert group["targets"] == ["10.214.0.9:8000"]
    labels = group["labels"]
    assert labels["__meta_kubernetes_pod_label_app_kubernetes_io_instance"] == "chat"
    assert labels["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_instance"] == "true"
    assert (labels["__meta_kubernetes_pod_container_port_name"], labels["__meta_kubernetes_pod_ready"]) == ("http", "true")
    assert (labels["__meta_kubernetes_namespace"], labels["__meta_kubernetes_pod_name"]) == ("llm", "chat-1")


def test_adapter_config_is_the_rendered_rules() -> None:
    configmap = next(
        o for o in rendered().values() if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("prometheus-adapter-rules")
    )
    config = rules_from_configmaps([configmap])
    [rule] = config["rules"]
    assert rule["name"]["as"] == "kubellm_running_requests" and rule["seriesQuery"].startswith("vllm:num_requests_running{")
    with pytest.raises(AdapterError, match="backend hpa"):
        rules_from_configmaps([])


def test_apiservice_names_its_selectorless_service_and_the_cluster_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("PEM")
    spec = CUSTOM_METRICS.apiservice("v1beta2", ca, 7443)["spec"]
    assert spec["group"] == "custom.metrics.k8s.io" and spec["service"]["port"] == 7443
    assert base64.b64decode(spec["caBundle"]) == b"PEM"
    (_, namespace), (_, service), (_, endpoints) = CUSTOM_METRICS.service_objects("10.213.0.1", 7443)
    assert namespace["metadata"]["name"] == spec["service"]["namespace"] == "kube-system"
    assert "selector" not in service["spec"] and endpoints["endpoints"] == [{"addresses": ["10.213.0.1"]}]
    assert CUSTOM_METRICS.dns_name == "prometheus-adapter.kube-system.svc"


def test_keda_metrics_server_is_external_metrics_and_its_crds_come_from_the_setup(tmp_path: Path) -> None:
    assert (EXTERNAL_METRICS.group, EXTERNAL_METRICS.dns_name) == ("external.metrics.k8s.io", "keda-metrics-apiserver.keda.svc")
    with pytest.raises(KedaError, match="scripts/setup/autoscale.sh"):
        crds(tmp_path)
    (tmp_path / "keda.sh_scaledobjects.yaml").write_text("kind: CustomResourceDefinition\nmetadata: {name: scaledobjects.keda.sh}\n")
    assert [c["metadata"] for c in crds(tmp_path)] == [{"name": "scaledobjects.keda.sh"}]
