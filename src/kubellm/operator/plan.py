"""What to apply and when: the desired objects split into phases, and a digest that says
whether anything changed since the last complete apply. Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kubellm.operator.kinds import kind_of


@dataclass(frozen=True)
class Plan:
    """Cache phase first (storage, loader Job, Services, policies); engine phase only once the
    cache is ready, so engines never start on a half-filled cache."""

    cache_phase: tuple[dict[str, Any], ...]
    engine_phase: tuple[dict[str, Any], ...]
    digest: str

    @cached_property
    def cache_digest(self) -> str:
        """Digest of the cache phase alone: while a loader runs, a pass that finds it already
        applied writes nothing (status ``cacheAppliedDigest``)."""
        return digest(list(self.cache_phase))

    @property
    def objects(self) -> tuple[dict[str, Any], ...]:
        return self.cache_phase + self.engine_phase

    @property
    def loader_jobs(self) -> tuple[dict[str, Any], ...]:
        return tuple(o for o in self.cache_phase if o["kind"] == "Job")


def digest(objects: list[dict[str, Any]]) -> str:
    blob = json.dumps(objects, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def make_plan(objects: list[dict[str, Any]]) -> Plan:
    """Split rendered (and stamped) objects; keeps the renderer's order within a phase."""
    engine = tuple(o for o in objects if kind_of(o).engine_phase)
    cache = tuple(o for o in objects if not kind_of(o).engine_phase)
    return Plan(cache, engine, digest(objects))
