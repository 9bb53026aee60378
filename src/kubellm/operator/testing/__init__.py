"""Test support for the operator: a real Kubernetes control plane on loopback with kwok nodes.

Used by the integration tests, the scale benchmark and anyone who wants to try the operator
without a cluster. Binaries come from ``scripts/controlplane/build.sh`` (``.tools/bin``).
"""

from kubellm.operator.testing.controlplane import ControlPlane, ControlPlaneError, find_binaries
from kubellm.operator.testing.nodes import GpuNodeSpec, gpu_node
from kubellm.operator.testing.harness import OperatorProcess, kubellm, wait_for

__all__ = ["ControlPlane", "ControlPlaneError", "GpuNodeSpec", "OperatorProcess", "find_binaries", "gpu_node", "kubellm", "wait_for"]
