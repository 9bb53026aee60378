"""The gateway's Kubernetes discovery (an EndpointSlice watch) against the real control plane:
the operator creates a service's Service and Deployment, the real endpointslice controller
publishes the kwok pods' IPs, and the gateway's discovery turns them into pool URLs, and
follows a scale-up and a delete.

The rendered Services carry ``app.kubernetes.io/component=engine`` and the operator's
``kubellm.dev/service`` label (no ``kubellm.dev/model`` label yet), so the discovery is
configured with those: the pool is named after the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from lightkube import AsyncClient, KubeConfig

from kubellm.gateway.config import KubernetesDiscovery as DiscoveryConfig
from kubellm.gateway.k8s import KubernetesDiscovery
from kubellm.operator.testing import ControlPlane, OperatorProcess, kubellm

pytestmark = pytest.mark.controlplane


class Recorder:
    """The gateway's EndpointRegistry seam: remembers each pool's latest URL list."""

    def __init__(self) -> None:
        self.pools: dict[str, list[str]] = {}
        self.changed = asyncio.Event()

    def set_endpoints(self, pool: str, urls: Sequence[str]) -> None:
        self.pools[pool] = list(urls)
        self.changed.set()


async def until(recorder: Recorder, pool: str, count: int, timeout: float = 60) -> list[str]:
    async def loop() -> list[str]:
        while len(recorder.pools.get(pool, [])) != count:
            recorder.changed.clear()
            await recorder.changed.wait()
        return recorder.pools[pool]

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"pool {pool} never had {count} endpoints: {recorder.pools}") from None


def pod_ips(plane: ControlPlane, namespace: str) -> set[str]:
    with plane.http() as client:
        pods = client.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
    return {p["status"]["podIP"] for p in pods if p.get("status", {}).get("podIP")}


async def test_endpointslice_discovery_follows_the_operator(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    def write(replicas: int) -> Path:
        path = tmp_path / "chat.yaml"
        spec = {"model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}, "scaling": {"minReplicas": replicas}}
        path.write_text(yaml.safe_dump({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat"}, "spec": spec}))
        return path

    config = DiscoveryConfig(namespace=namespace, label_selector="app.kubernetes.io/component=engine", model_label="kubellm.dev/service")
    client = AsyncClient(config=KubeConfig.from_file(str(control_plane.kubeconfig)))
    recorder = Recorder()
    watch = asyncio.create_task(KubernetesDiscovery(config, client).run(recorder))
    try:
        await asyncio.to_thread(kubellm, control_plane, "apply", str(write(2)), "--resource", "-n", namespace)
        urls = await until(recorder, "chat", 2)
        assert {u.removeprefix("http://").rsplit(":", 1)[0] for u in urls} == pod_ips(control_plane, namespace)
        assert all(u.endswith(":8000") for u in urls)

        await asyncio.to_thread(kubellm, control_plane, "apply", str(write(3)), "--resource", "-n", namespace)
        assert len(await until(recorder, "chat", 3)) == 3

        await asyncio.to_thread(kubellm, control_plane, "delete", "chat", "-n", namespace, "--timeout=60")
        assert await until(recorder, "chat", 0) == []
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await client.close()
