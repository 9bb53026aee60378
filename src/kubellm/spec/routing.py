"""How the gateway picks an engine: `spec.routing`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from kubellm.spec.base import SpecModel

ScorerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-zA-Z0-9-]{0,62}$")]


class Routing(SpecModel):
    """Routing profile of the kubellm gateway."""

    profile: ScorerName = "default"
    """Routing profile name understood by the gateway."""
    scorers: dict[ScorerName, Annotated[float, Field(ge=0, le=100)]] = {}
    """Scorer weights (e.g. prefixCache: 3, queueDepth: 2, kvCacheUsage: 1); empty: the
    profile's own."""
    session_header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")] = "x-session-id"
    """Header whose value pins a session to one engine when possible."""
