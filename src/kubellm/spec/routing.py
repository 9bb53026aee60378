"""How the gateway picks an engine: `spec.routing`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from kubellm.kvhash import HashAlgo, UnseededHashError, resolve_seed
from kubellm.spec.base import SpecModel

ScorerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-zA-Z0-9-]{0,62}$")]


class PrecisePrefix(SpecModel):
    """Precise prefix routing: the gateway learns which KV blocks each engine holds from the
    engines' own KV-cache events (vLLM's ZMQ publisher) and hashes prompts as the engines do."""

    hash_algo: HashAlgo = "sha256"
    """The engines' `--prefix-caching-hash-algo`; the gateway hashes prompts with the same one."""
    hash_seed: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")] | None = None
    """PYTHONHASHSEED given to the engines and the gateway (the root of vLLM's block hashes).
    Unset: vLLM's fixed seed for sha256 algorithms; required for xxhash ones, which vLLM
    otherwise seeds at random in each engine."""
    kv_events_port: Annotated[int, Field(ge=1024, le=65535)] = 5557
    """Port of each engine's ZMQ KV-event publisher (opened to the gateway by the NetworkPolicy)."""
    block_size: Annotated[int, Field(ge=1, le=256)] = 16
    """Tokens per KV block, set on the engines (`--block-size`) and in the gateway."""

    @model_validator(mode="after")
    def _seed_for_xxhash(self) -> "PrecisePrefix":
        try:
            resolve_seed(self.hash_algo, self.hash_seed)
        except UnseededHashError as exc:
            raise ValueError(f"hashSeed: {exc}") from None
        return self


class Routing(SpecModel):
    """Routing profile of the kubellm gateway."""

    profile: ScorerName = "default"
    """Routing profile name understood by the gateway: default (the lowest predicted time to
    first token, with session and adapter affinity), weighted (fixed weights of prefix, queue,
    load and KV-cache scores), predicted-latency, round-robin, prefix-hash."""
    scorers: dict[ScorerName, Annotated[float, Field(ge=0, le=100)]] = {}
    """Scorer weights (e.g. prefixCache: 3, queueDepth: 2, kvCacheUsage: 1); empty: the
    profile's own."""
    session_header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")] = "x-session-id"
    """Header whose value pins a session to one engine when possible."""
    precise_prefix: PrecisePrefix | None = None
    """Set: route on the engines' KV-cache events (precisePrefixCache scorer); the engines
    publish them and hash blocks as the gateway does. Unset: prefix affinity is estimated
    from what the gateway sent where."""
