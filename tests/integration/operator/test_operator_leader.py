"""Two operator replicas on the real control plane: only the Lease holder reconciles; when it
dies (SIGKILL, no release) the other takes the Lease once it expires and carries on.

Both run as separate processes with the operator ServiceAccount's own RBAC, as two pods of
the Deployment would. Only the kubelets are simulated (kwok)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm, wait_for

from .conftest import OPERATOR_NAMESPACE
from .test_operator_lifecycle import settled, write_spec

pytestmark = pytest.mark.controlplane
LEASE_SECONDS = 6
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/kubellm-operator"


def _holder(client: httpx.Client) -> str | None:
    response = client.get(LEASE)
    if response.status_code == 404:
        return None
    return (response.json().get("spec") or {}).get("holderIdentity") or None


def _lease(client: httpx.Client) -> dict[str, Any]:
    response = client.get(LEASE)
    response.raise_for_status()
    return dict(response.json())


def _lease_time(client: httpx.Client, field: str) -> dt.datetime:
    return dt.datetime.strptime(_lease(client)["spec"][field], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def _replica(plane: ControlPlane, kubeconfig: Path, log: Path, identity: str) -> OperatorProcess:
    return OperatorProcess(plane, log, identity, kubeconfig=kubeconfig, lease_namespace=OPERATOR_NAMESPACE,
                           lease_seconds=LEASE_SECONDS)


def test_only_the_leader_reconciles_and_a_standby_takes_over_when_it_dies(
    control_plane: ControlPlane, operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    first = _replica(control_plane, operator_kubeconfig, tmp_path / "a.log", "replica-a").start()
    second: OperatorProcess | None = None
    try:
        with control_plane.http() as client:
            wait_for(lambda: _holder(client) == "replica-a", 60, f"replica-a leading\n{first.tail()}")
            second = _replica(control_plane, operator_kubeconfig, tmp_path / "b.log", "replica-b").start()
            standby = second
            wait_for(lambda: "waiting for lease" in standby.tail(), 60, f"replica-b started\n{second.tail()}")
            spec = write_spec(tmp_path / "svc.yaml", "leader", model={"uri": "sim://tiny-chat"},
                              engine={"kind": "sim"})
            kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
            wait_for(lambda: settled(client, namespace, "leader"), 90, f"Available under replica-a\n{first.tail()}")
            assert _holder(client) == "replica-a"
            standby_log = second.tail()
            assert "waiting for lease" in standby_log and "leading as" not in standby_log
            assert "Handler" in first.tail()  # what a reconciling replica logs...
            assert "Handler" not in standby_log, "the standby reconciled while another replica led"

            first.kill()
            last_renewal = _lease_time(client, "renewTime")  # final: its holder is dead
            wait_for(lambda: _holder(client) == "replica-b", 4 * LEASE_SECONDS + 30, f"replica-b leading\n{second.tail()}")
            taken = _lease_time(client, "acquireTime")
            waited = (taken - last_renewal).total_seconds()
            assert waited >= LEASE_SECONDS - 0.01, f"the Lease was taken {waited:.2f} s after its last renewal: before it expired"
            assert _lease(client)["spec"]["leaseTransitions"] >= 1

            write_spec(spec, "leader", model={"uri": "sim://tiny-chat"}, engine={"kind": "sim"},
                       scaling={"minReplicas": 2})
            kubellm(control_plane, "apply", str(spec), "--resource", "-n", namespace)
            obj: dict[str, Any] = wait_for(lambda: settled(client, namespace, "leader"), 90,
                                           f"update reconciled by replica-b\n{second.tail()}")
            assert obj["status"]["readyReplicas"] == 2
            assert "leading as replica-b" in second.tail()
    finally:
        first.kill()
        if second is not None:
            second.stop()
