"""Fixtures for the tests that run real pods: one control plane with one real node (containerd,
kubelet, kube-proxy in a network namespace the harness creates) beside a tainted kwok GPU node,
shared by a test module. Only one real node can run on a machine, so these tests run serially in
one process; everything the node made is removed at the end, even after a failure.

Needs root and what scripts/setup/node.sh installs; a missing piece fails the tests (never a
skip) with the command that provides it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubellm.operator.testing import ControlPlane, GpuNodeSpec
from kubellm.operator.testing.harness import fresh_namespace
from kubellm.operator.testing.realnode import NODE_IMAGES, RealNode, RealNodeError, real_cluster

TESTBOX = NODE_IMAGES / "testbox.oci.tar"


@pytest.fixture(scope="module")
def realnode_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, RealNode]]:
    workdir = tmp_path_factory.mktemp("realnode")
    try:
        with real_cluster(workdir, images=[TESTBOX]) as (plane, node):
            # The kwok nodes of the scale tests stay: one here, tainted as GPU nodes are, so
            # that no pod of these tests lands on it by accident.
            plane.add_nodes("kwok-gpu", 1, GpuNodeSpec(gpus=8))
            yield plane, node
    except RealNodeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def plane(realnode_cluster: tuple[ControlPlane, RealNode]) -> ControlPlane:
    return realnode_cluster[0]


@pytest.fixture(scope="module")
def node(realnode_cluster: tuple[ControlPlane, RealNode]) -> RealNode:
    return realnode_cluster[1]


@pytest.fixture
def namespace(plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    with fresh_namespace(plane, "rn") as name:
        yield name
