"""Settings of the running operator (read once, at the CLI edge)."""

from __future__ import annotations

import os
import socket

from pydantic import BaseModel, ConfigDict, Field

from kubellm.render.gateway import GatewaySettings


def default_identity() -> str:
    """The pod name in a cluster (stable across container restarts), else host-pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class OperatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: str | None = None
    """Kubeconfig path; none: $KUBECONFIG, ~/.kube/config, then the in-cluster service account."""
    context: str | None = None
    """Kubeconfig context; none: the kubeconfig's current context."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to serve; empty: the whole cluster."""
    resync_seconds: float = Field(10.0, gt=0)
    """How often each LLMService is re-checked (status, missing objects)."""
    leader_election: bool = True
    lease_name: str = "kubellm-operator"
    lease_namespace: str | None = None
    """Namespace of the Lease (default: the client's namespace)."""
    lease_seconds: int = Field(15, ge=1)
    identity: str = Field(default_factory=default_identity)
    """Who holds the lease; a restarted pod keeps its name and so its lease."""
    finalizer: str = "kubellm.dev/finalizer"
    autoscale_tick_seconds: float = Field(1.0, gt=0)
    """How often the operator's own scaling asks whether a unit is due (scaling.backend operator)."""
    gateway: GatewaySettings | None = GatewaySettings()
    """How each namespace's gateway runs; None: keep its ConfigMap only, deploy no gateway."""
