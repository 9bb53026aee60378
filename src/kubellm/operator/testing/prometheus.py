"""Prometheus for the real-node tests: Debian's server, run as a child process, scraping what
kubellm's rendered PodMonitor selects.

No Prometheus Operator runs here, so :func:`scrape_config` does its job for one PodMonitor:
it turns the monitor into a scrape job with the relabelling the Prometheus Operator generates
(selector and port kept, ``namespace``, ``pod`` and ``container`` labels, ``podTargetLabels``
copied with their names sanitised). The series then carry the labels kubellm's queries and
Prometheus Adapter rules select on.

Discovery: Debian builds Prometheus without Kubernetes service discovery (promtool:
"field kubernetes_sd_configs not found"), so :class:`PodDiscovery` does what its ``pod`` role
does: it lists the monitor's namespaces' pods from the API server every second and writes one
target per container port, with the same ``__meta_kubernetes_pod_*`` labels, to a file that
``file_sd_configs`` reads. The relabelling above is unchanged by this.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from kubellm.operator.testing.aggregated import child

Obj = dict[str, Any]


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or refused a query."""


def sanitize(name: str) -> str:
    """A Kubernetes label name as Prometheus names it (``app.kubernetes.io/x`` →
    ``app_kubernetes_io_x``)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _keep_label(label: str, values: list[str]) -> Obj:
    meta = sanitize(label)
    alternatives = "|".join(re.escape(v) for v in values)
    return {
        "action": "keep",
        "source_labels": [f"__meta_kubernetes_pod_label_{meta}", f"__meta_kubernetes_pod_labelpresent_{meta}"],
        "regex": f"({alternatives});true",
    }


def _selector_rules(selector: Mapping[str, Any]) -> list[Obj]:
    rules = [_keep_label(k, [v]) for k, v in sorted(selector.get("matchLabels", {}).items())]
    for expression in selector.get("matchExpressions", []):
        if expression["operator"] != "In":
            raise PrometheusError(f"matchExpressions operator {expression['operator']!r} is not translated (only In)")
        rules.append(_keep_label(expression["key"], list(expression["values"])))
    return rules


def _target_rules(endpoint: Mapping[str, Any], pod_target_labels: list[str]) -> list[Obj]:
    copied = [
        {"action": "replace", "source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"], "regex": "(.+)",
         "target_label": sanitize(label), "replacement": "${1}"}
        for label in pod_target_labels
    ]
    return [
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": re.escape(endpoint["port"])},
        {"action": "replace", "source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"action": "replace", "source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"action": "replace", "source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "replace", "replacement": endpoint["port"], "target_label": "endpoint"},
        *copied,
    ]


def monitored_namespaces(pod_monitor: Mapping[str, Any]) -> list[str]:
    return list(pod_monitor["spec"].get("namespaceSelector", {}).get("matchNames") or [pod_monitor["metadata"]["namespace"]])


def scrape_config(pod_monitor: Mapping[str, Any], targets_file: Path, refresh_seconds: int = 1) -> list[Obj]:
    """The scrape jobs the Prometheus Operator would generate for *pod_monitor*, one per
    ``podMetricsEndpoints`` entry, discovering pods from *targets_file* (:class:`PodDiscovery`)."""
    if pod_monitor.get("kind") != "PodMonitor":
        raise PrometheusError(f"expected a PodMonitor, got {pod_monitor.get('kind')!r}")
    meta, spec = pod_monitor["metadata"], pod_monitor["spec"]
    discovery = {"files": [str(targets_file)], "refresh_interval": f"{refresh_seconds}s"}
    jobs = []
    for index, endpoint in enumerate(spec["podMetricsEndpoints"]):
        job: Obj = {
            "job_name": f"podMonitor/{meta['namespace']}/{meta['name']}/{index}",
            "metrics_path": endpoint.get("path", "/metrics"),
            "file_sd_configs": [discovery],
            "relabel_configs": [*_selector_rules(spec["selector"]), *_target_rules(endpoint, list(spec.get("podTargetLabels", [])))],
        }
        if "interval" in endpoint:
            job["scrape_interval"] = endpoint["interval"]
        jobs.append(job)
    return jobs


def pod_targets(pods: list[Obj]) -> list[Obj]:
    """File-SD target groups with the labels Kubernetes discovery's ``pod`` role gives: one per
    declared container port of each pod that has an IP."""
    groups = []
    for pod in pods:
        ip = pod.get("status", {}).get("podIP")
        if not ip:
            continue
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                labels = {**_pod_labels(pod), "__meta_kubernetes_pod_container_name": container["name"],
                          "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                          "__meta_kubernetes_pod_container_port_number": str(port["containerPort"])}
                groups.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": labels})
    return groups


def _pod_labels(pod: Obj) -> dict[str, str]:
    meta, status = pod["metadata"], pod.get("status", {})
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
    labels = {
        "__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_pod_name": meta["name"],
        "__meta_kubernetes_pod_ip": status.get("podIP", ""), "__meta_kubernetes_pod_phase": status.get("phase", ""),
        "__meta_kubernetes_pod_ready": str(ready).lower(), "__meta_kubernetes_pod_node_name": pod["spec"].get("nodeName", ""),
    }
    for key, value in meta.get("labels", {}).items():
        labels[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
        labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
    return labels


class PodDiscovery:
    """Writes :func:`pod_targets` of *namespaces* to *path* every *interval* seconds, in a
    thread, until stopped (what Kubernetes discovery's watch would do)."""

    def __init__(self, list_pods: Callable[[str], list[Obj]], namespaces: list[str], path: Path, interval: float = 1.0) -> None:
        self.list_pods, self.namespaces, self.path, self.interval = list_pods, namespaces, path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-discovery", daemon=True)

    def refresh(self) -> None:
        groups = pod_targets([p for ns in self.namespaces for p in self.list_pods(ns)])
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(yaml.safe_dump(groups))
        scratch.replace(self.path)  # atomic: Prometheus never reads half a file

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except httpx.HTTPError:
                continue  # the next pass tries again, as a watch would reconnect

    def __enter__(self) -> PodDiscovery:
        self.refresh()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Prometheus:
    """A running Prometheus server; ``url`` is where to query it."""

    url: str
    log: Path

    def query(self, promql: str) -> list[Obj]:
        """The instant vector of *promql* (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {promql!r}: {response.status_code} {body}")
        return list(body["data"]["result"])

    def targets(self) -> list[Obj]:
        """The active scrape targets and their health."""
        return list(httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"])


def binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusError("prometheus not found: run scripts/setup/autoscale.sh (Debian's prometheus package)")
    return found


@contextmanager
def run_prometheus(workdir: Path, jobs: list[Obj], port: int, evaluation_seconds: int = 5) -> Iterator[Prometheus]:
    """Prometheus on 127.0.0.1:*port* with *jobs*, its data and log in *workdir*; stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": f"{evaluation_seconds}s"}, "scrape_configs": jobs}))
    log = workdir / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    argv = [binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    with child(argv, log) as process:
        _wait_ready(process, f"{url}/-/ready", log)
        yield Prometheus(url, log)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrometheusError(f"prometheus exited with {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise PrometheusError(f"prometheus not ready after {timeout:.0f}s; see {log}")
