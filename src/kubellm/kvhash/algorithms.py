"""vLLM's four prefix-caching hash functions (``vllm/utils/hashing.py``).

Each maps any value to a digest: pickle (protocol 5) or canonical CBOR to serialize it,
then SHA-256 (32 bytes) or XXH3-128 (16 bytes). Pickle output for the values hashed here
(bytes, tuples of ints, strings, None) is the same in every CPython since 3.8.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any, Literal, get_args

import cbor2
import xxhash

from kubellm.kvhash.errors import UnknownHashAlgorithm

HashAlgo = Literal["sha256", "sha256_cbor", "xxhash", "xxhash_cbor"]
HASH_ALGORITHMS: tuple[HashAlgo, ...] = get_args(HashAlgo)
HashFn = Callable[[Any], bytes]


def _pickled(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _cbor(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _sha256(value: Any) -> bytes:
    return hashlib.sha256(_pickled(value)).digest()


def _sha256_cbor(value: Any) -> bytes:
    return hashlib.sha256(_cbor(value)).digest()


def _xxhash(value: Any) -> bytes:
    return xxhash.xxh3_128_digest(_pickled(value))


def _xxhash_cbor(value: Any) -> bytes:
    return xxhash.xxh3_128_digest(_cbor(value))


_FUNCTIONS: dict[HashAlgo, HashFn] = {
    "sha256": _sha256, "sha256_cbor": _sha256_cbor, "xxhash": _xxhash, "xxhash_cbor": _xxhash_cbor,
}


def hash_function(algo: HashAlgo) -> HashFn:
    return _FUNCTIONS[algo]


def is_cryptographic(algo: HashAlgo) -> bool:
    """vLLM seeds non-cryptographic algorithms at random unless PYTHONHASHSEED is set."""
    return algo.startswith("sha256")


def parse_algo(name: str) -> HashAlgo:
    """*name* as a :data:`HashAlgo`, or an error listing the ones vLLM offers."""
    for algo in HASH_ALGORITHMS:
        if name == algo:
            return algo
    raise UnknownHashAlgorithm(
        f"unknown prefix-caching hash algorithm {name!r}; vLLM offers {', '.join(HASH_ALGORITHMS)}")
