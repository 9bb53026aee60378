"""Where each model URI's files appear inside the engine pods.

Every URI gets a stable key (a digest of the URI and its file patterns). Its files appear at
one path, whatever the cache kind:

- cache claim (filled by a loader Job): the claim is mounted read-only at /models/cache;
  files at /models/cache/<key> (the loader writes /cache/<key>, atomically when complete)
- OCI image volume: mounted at /models/<key>
- pvc://claim/path: the claim mounted read-only at /models/claims/<claim>; files below it
- sim://: nothing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubellm.render.context import RenderContext, short_hash
from kubellm.spec.uri import parse_model_uri

CACHE_VOLUME = "model-cache"
CACHE_MOUNT = "/models/cache"


@dataclass(frozen=True)
class Source:
    uri: str
    key: str
    kind: str  # "cache", "image", "claim", "none"
    path: str
    volumes: tuple[dict[str, Any], ...] = field(default=())
    mounts: tuple[dict[str, Any], ...] = field(default=())


def source_key(uri: str, allow: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> str:
    return "m-" + short_hash(uri, *allow, "|", *ignore)


def cache_claim_name(ctx: RenderContext) -> str:
    return f"{ctx.name}-model-cache"


def resolve(ctx: RenderContext, uri: str) -> Source:
    """The Source of *uri* for this spec's cache settings."""
    spec = ctx.service.spec
    patterns = (spec.model.allow_patterns, spec.model.ignore_patterns) if uri == spec.model.uri else ((), ())
    key = source_key(uri, *patterns)
    parsed = parse_model_uri(uri)
    if parsed.scheme == "sim":
        return Source(uri, key, "none", "")
    if parsed.scheme == "pvc":
        return _claim_source(uri, key, parsed.location)
    if parsed.scheme == "oci" and spec.cache.kind == "image":
        return _image_source(ctx, uri, key)
    volume = {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache_claim_name(ctx), "readOnly": True}}
    mount = {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT, "readOnly": True}
    return Source(uri, key, "cache", f"{CACHE_MOUNT}/{key}", (volume,), (mount,))


def _claim_source(uri: str, key: str, location: str) -> Source:
    claim, _, sub_path = location.partition("/")
    volume_name = f"claim-{short_hash(claim)}"
    mount_path = f"/models/claims/{claim}"
    volume = {"name": volume_name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    mount = {"name": volume_name, "mountPath": mount_path, "readOnly": True}
    path = f"{mount_path}/{sub_path}".rstrip("/")
    return Source(uri, key, "claim", path, (volume,), (mount,))


def _image_source(ctx: RenderContext, uri: str, key: str) -> Source:
    reference = uri.removeprefix("oci://")
    volume = {"name": key, "image": {"reference": reference, "pullPolicy": ctx.service.spec.cache.image_pull_policy}}
    mount = {"name": key, "mountPath": f"/models/{key}", "readOnly": True}
    return Source(uri, key, "image", f"/models/{key}", (volume,), (mount,))


def merge_sources(sources: list[Source]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts of several sources, each volume once, sorted by name."""
    volumes = {v["name"]: v for s in sources for v in s.volumes}
    mounts = {m["name"]: m for s in sources for m in s.mounts}
    return [volumes[k] for k in sorted(volumes)], [mounts[k] for k in sorted(mounts)]
