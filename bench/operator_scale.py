"""Scale benchmark of the operator on the real control plane with kwok nodes.

    .venv/bin/python bench/operator_scale.py [--nodes 1000] [--services 100] [--resync 10]

Starts a control plane (scripts/controlplane/build.sh first), creates N kwok GPU nodes
(8 x NVIDIA-L4 each, tainted), installs the CRD and RBAC, runs `kubellm operator` with its
ServiceAccount's least-privilege credentials, applies M LLMServices at once (each: an hf://
model with a loader Job and a cache claim, 1 GPU per replica, 1-2 replicas), and measures:
time until all are Available and rolled out, the operator's CPU time and peak RSS, and the
API requests it made (counted from the API server's audit log, filtered to its user).
Prints a table and one JSON line. Kubelets are simulated (kwok); no GPU exists here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from kubellm.operator.testing import ControlPlane, GpuNodeSpec, OperatorProcess, kubellm

OPERATOR_USER = "system:serviceaccount:kubellm-system:kubellm-operator"
API = "/apis/kubellm.dev/v1alpha1"


def service(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.dev/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": f"svc-{i:03d}"},
        "spec": {
            "model": {"uri": f"hf://bench/model-{i}"},
            "engine": {"kind": "vllm"},
            "resources": {"accelerator": {"type": "NVIDIA-L4", "count": 1}},
            "scaling": {"minReplicas": 1 + i % 2},
        },
    }


def all_available(client: httpx.Client, ns: str, count: int) -> int:
    items = client.get(f"{API}/namespaces/{ns}/llmservices").json()["items"]
    done = 0
    for item in items:
        status = item.get("status") or {}
        progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), {})
        if status.get("phase") == "Available" and progressing.get("status") == "False" and status.get("observedGeneration") == item["metadata"]["generation"]:
            done += 1
    return done


class Sampler(threading.Thread):
    """Samples the operator's CPU time and RSS from /proc every half second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.cpu = pid, 0, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        tick = 100.0  # SC_CLK_TCK on Linux
        while not self.stop.wait(0.5):
            try:
                stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
                self.cpu = (int(stat[11]) + int(stat[12])) / tick
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
            except (OSError, IndexError, ValueError):
                return


def count_requests(audit_log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not audit_log.exists():
        return counts
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") == OPERATOR_USER and event.get("stage") == "ResponseComplete":
            key = event["verb"]
            counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--resync", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    figures: dict[str, Any] = {"nodes": args.nodes, "services": args.services, "resync_s": args.resync}
    with tempfile.TemporaryDirectory() as tmp, ControlPlane.start(Path(tmp) / "cp", audit_users=(OPERATOR_USER,)) as plane:
        figures["control_plane_start_s"] = round(plane.timings["ready"], 1)
        began = time.monotonic()
        plane.add_nodes("gpu", args.nodes, GpuNodeSpec(gpus=8, product="NVIDIA-L4"))
        # Untainted CPU nodes for the loader Jobs (they request no GPU and tolerate no taint).
        plane.add_nodes("cpu", max(args.nodes // 100, 2), GpuNodeSpec(gpus=0))
        figures["nodes_ready_s"] = round(time.monotonic() - began, 1)
        kubellm(plane, "install", "--replicas=0")
        kubeconfig = plane.service_account_kubeconfig("kubellm-system", "kubellm-operator")
        operator = OperatorProcess(plane, Path(tmp) / "operator.log", "bench", kubeconfig=kubeconfig,
                                   lease_namespace="kubellm-system", resync=args.resync).start()
        assert operator.popen is not None
        sampler = Sampler(operator.popen.pid)
        sampler.start()
        try:
            with plane.http() as client:
                client.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}}).raise_for_status()
                began = time.monotonic()
                for i in range(args.services):
                    client.post(f"{API}/namespaces/bench/llmservices", json=service(i)).raise_for_status()
                figures["apply_s"] = round(time.monotonic() - began, 1)
                done = 0
                while time.monotonic() - began < args.timeout:
                    done = all_available(client, "bench", args.services)
                    if done == args.services:
                        break
                    time.sleep(1)
                figures["all_available_s"] = round(time.monotonic() - began, 1) if done == args.services else None
                figures["available"] = done
                if done != args.services:
                    print(operator.tail())
                pods = client.get("/api/v1/namespaces/bench/pods").json()["items"]
                figures["engine_pods_running"] = sum(1 for p in pods if p["status"].get("phase") == "Running")
        finally:
            sampler.stop.set()
            sampler.join()
            operator.stop()
        time.sleep(2)  # the audit log is written in batches
        requests = count_requests(plane.audit_log)
    figures["operator_cpu_s"] = round(sampler.cpu, 1)
    figures["operator_peak_rss_mib"] = round(sampler.peak_rss / 2**20, 1)
    figures["operator_api_requests"] = sum(requests.values())
    figures["operator_api_requests_by_verb"] = requests
    for key, value in figures.items():
        print(f"{key:32} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
