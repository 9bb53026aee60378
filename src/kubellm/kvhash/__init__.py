"""vLLM's prefix-cache block hashing, on its own: used by the simulator and the gateway.

vLLM names each full block of ``block_size`` prompt tokens by a chained hash,
``hash_fn((parent_hash, tuple(block_token_ids), extra_keys))``, the first block's parent
being ``NONE_HASH = hash_fn(seed)``. Four hash functions are offered
(``--prefix-caching-hash-algo``); KV events publish the low 64 bits of each hash as an
integer (``VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES``, on by default). A router that computes
the same hashes from the same token ids can match the engines' events exactly.

Matches vLLM 0.34.0, pinned by golden vectors made with vLLM's own functions
(tests/unit/kvhash). Earlier releases differ in the extra keys (untagged LoRA names and
salts) and in the seed used when ``PYTHONHASHSEED`` is unset.

Errors (all :class:`KvHashError`, a ``ValueError``):
``KvHashError``
 ├── ``UnknownHashAlgorithm``: a name vLLM does not offer
 └── ``UnseededHashError``: xxhash without ``PYTHONHASHSEED``: vLLM seeds it at random per
     process, so no one else can reproduce its hashes
"""

from kubellm.kvhash.algorithms import HASH_ALGORITHMS, HashAlgo, hash_function, parse_algo
from kubellm.kvhash.blocks import BlockHasher, ExtraKeys, MmSpan, event_hash
from kubellm.kvhash.errors import KvHashError, UnknownHashAlgorithm, UnseededHashError
from kubellm.kvhash.seed import DEFAULT_SEED, engine_seed, none_hash, resolve_seed

__all__ = [
    "DEFAULT_SEED", "HASH_ALGORITHMS", "BlockHasher", "ExtraKeys", "HashAlgo", "KvHashError", "MmSpan",
    "UnknownHashAlgorithm", "UnseededHashError", "engine_seed", "event_hash", "hash_function", "none_hash", "parse_algo",
    "resolve_seed",
]
