"""How long a new replica takes to serve, by where its weights come from (pure).

``cold_start = pod scheduling + node provisioning (no free node) + weight loading + engine
start``. Loading is the weights' size over the path's bandwidth. The defaults are
assumptions, stated so a user can replace them with their cluster's measurements
(``kubellm plan --cache`` picks the path; the speeds are fields of :class:`Provisioning`): GPU node provisioning of 3 min (managed clouds take 2 to
5 min for a GPU node to join), 2 GB/s from a filled ReadWriteMany PVC, 1 GB/s for an OCI
image volume pulled onto a new node (already on the node: page-cache speed, 4 GB/s), 0.5 GB/s
pulling from the hub or object store on start, and 60 s of engine start (CUDA graph
capture and compilation). A freed node is kept for 10 minutes before it is removed (the
cluster autoscaler's default ``scale-down-unneeded-time``), so a quick scale-up reuses it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CacheKind = Literal["pvc", "oci", "pull"]


class Provisioning(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    cache: CacheKind = "pvc"
    pod_schedule_s: Annotated[float, Field(ge=0, le=3600)] = 2.0
    node_provision_s: Annotated[float, Field(ge=0, le=7200)] = 180.0
    node_idle_s: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    engine_start_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    pvc_gbps: Annotated[float, Field(gt=0)] = 2.0
    oci_gbps: Annotated[float, Field(gt=0)] = 1.0
    oci_cached_gbps: Annotated[float, Field(gt=0)] = 4.0
    pull_gbps: Annotated[float, Field(gt=0)] = 0.5

    def cold_start(self, weight_bytes: float, new_node: bool) -> float:
        """Seconds from creating a replica to it serving."""
        if self.cache == "pvc":
            gbps = self.pvc_gbps
        elif self.cache == "oci":
            gbps = self.oci_gbps if new_node else self.oci_cached_gbps
        else:
            gbps = self.pull_gbps
        load = weight_bytes / (gbps * 1e9)
        return self.pod_schedule_s + (self.node_provision_s if new_node else 0.0) + load + self.engine_start_s
