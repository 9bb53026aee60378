"""The root of every block chain: vLLM's ``NONE_HASH``, the parent of a prompt's first block.

vLLM (0.34) derives it as ``hash_fn(seed)`` where the seed is ``PYTHONHASHSEED`` when set,
otherwise the fixed string ``"vllm-none-hash"`` for SHA-256 algorithms and random bytes for
xxhash ones (a predictable seed would let an attacker precompute colliding blocks).
"""

from __future__ import annotations

import os

from kubellm.kvhash.algorithms import HashAlgo, hash_function, is_cryptographic
from kubellm.kvhash.errors import UnseededHashError

DEFAULT_SEED = "vllm-none-hash"


def resolve_seed(algo: HashAlgo, pythonhashseed: str | None) -> str:
    """The seed an engine with *algo* and this ``PYTHONHASHSEED`` (None: unset) uses."""
    if pythonhashseed is not None:
        return pythonhashseed
    if is_cryptographic(algo):
        return DEFAULT_SEED
    raise UnseededHashError(
        f"{algo} without PYTHONHASHSEED is seeded at random in each vLLM process, so no router can "
        "match its block hashes; set the same PYTHONHASHSEED on the engines and the gateway")


def none_hash(algo: HashAlgo, seed: str) -> bytes:
    return hash_function(algo)(seed)


def engine_seed(algo: HashAlgo, pythonhashseed: str | None) -> str:
    """The seed one engine process draws (random for unseeded xxhash, as vLLM does)."""
    try:
        return resolve_seed(algo, pythonhashseed)
    except UnseededHashError:
        return os.urandom(32).hex()
