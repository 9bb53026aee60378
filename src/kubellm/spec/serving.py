"""Serving topology: `spec.serving` (standard, disaggregated prefill/decode, multinode)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SpecModel
from kubellm.spec.engine import EngineTuning
from kubellm.spec.scaling import Scaling

ServingMode = Literal["standard", "disaggregated", "multinode"]


class Role(SpecModel):
    """One role of disaggregated serving: its own replicas, accelerators and engine options."""

    scaling: Scaling = Scaling()
    """Replicas and autoscaling of this role."""
    accelerator_count: Annotated[int, Field(ge=0, le=16)] | None = None
    """Accelerators per pod of this role (default: spec.resources.accelerator.count)."""
    engine: EngineTuning = EngineTuning()
    """Engine options of this role, overriding spec.engine."""


class Multinode(SpecModel):
    """One model replica spread over several nodes (LeaderWorkerSet + Ray)."""

    nodes: Annotated[int, Field(ge=2, le=64)] = 2
    """Pods (one per node) in each replica group: a leader and nodes-1 workers."""
    ray_port: Annotated[int, Field(ge=1024, le=65535)] = 6379
    """Port of the Ray head on the leader."""


class KvTransfer(SpecModel):
    """How prefill hands its KV cache to decode."""

    connector: Literal["NixlConnector", "LMCacheConnectorV1", "P2pNcclConnector"] = "NixlConnector"
    """vLLM KV connector."""


class Serving(SpecModel):
    """Serving mode and the per-role settings it needs."""

    mode: ServingMode = "standard"
    """standard (one Deployment), disaggregated (prefill and decode Deployments),
    multinode (LeaderWorkerSet groups across nodes)."""
    prefill: Role | None = None
    """Prefill role (mode disaggregated)."""
    decode: Role | None = None
    """Decode role (mode disaggregated)."""
    kv_transfer: KvTransfer = KvTransfer()
    """KV transfer between roles (mode disaggregated)."""
    multinode: Multinode | None = None
    """Group layout (mode multinode)."""

    @property
    def group(self) -> Multinode:
        """Multinode settings, defaulted when mode multinode names none."""
        return self.multinode if self.multinode is not None else Multinode()
