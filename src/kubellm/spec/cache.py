"""How the weights reach the engine pods: `spec.cache`."""

from __future__ import annotations

from typing import Literal

from kubellm.spec.base import SpecModel
from kubellm.spec.types import KubeName, Quantity

CacheKind = Literal["pvc", "image", "prefilled", "none"]


class StorageClassSpec(SpecModel):
    """A StorageClass created for the cache, when no existing one fits."""

    provisioner: str
    """CSI provisioner, e.g. pd.csi.storage.gke.io or ebs.csi.aws.com."""
    parameters: dict[str, str] = {}
    """Provisioner parameters (disk type...)."""
    reclaim_policy: Literal["Retain", "Delete"] = "Retain"
    """Retain keeps the downloaded weights when the claim is deleted."""
    zones: tuple[str, ...] = ()
    """Allowed topology zones (topology.kubernetes.io/zone); keep them where the GPUs are."""
    volume_binding_mode: Literal["WaitForFirstConsumer", "Immediate"] = "WaitForFirstConsumer"
    """WaitForFirstConsumer binds the volume in the zone of the first pod that uses it."""


class Cache(SpecModel):
    """Weights cache. kind: pvc (a claim filled once by a loader Job), image (an OCI image
    volume, Kubernetes 1.31+), prefilled (an existing claim named by a pvc:// URI), none
    (the simulator needs no weights). Default: chosen from the model URI."""

    kind: CacheKind | None = None
    """Cache kind; default: prefilled for pvc://, none for sim://, pvc otherwise."""
    size: Quantity = "100Gi"
    """Size of the cache claim; make it larger than the model's files."""
    storage_class_name: KubeName | None = None
    """Existing StorageClass for the claim (default: the cluster default)."""
    storage_class: StorageClassSpec | None = None
    """Create a StorageClass named `<name>-cache` with these settings instead."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"] = "ReadWriteOnce"
    """ReadWriteMany or ReadOnlyMany let replicas on several nodes share one claim."""
    image_pull_policy: Literal["IfNotPresent", "Always"] = "IfNotPresent"
    """Pull policy of the OCI image volume (kind image)."""
    loader_active_deadline_seconds: int = 7200
    """The loader Job fails after this long."""
