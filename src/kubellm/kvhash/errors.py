"""The errors of :mod:`kubellm.kvhash` (tree in the package docstring)."""

from __future__ import annotations


class KvHashError(ValueError):
    """Block hashes that cannot be computed as an engine would."""


class UnknownHashAlgorithm(KvHashError):
    """A ``--prefix-caching-hash-algo`` value vLLM does not offer."""


class UnseededHashError(KvHashError):
    """A non-cryptographic algorithm without a shared seed: its hashes are per process."""
