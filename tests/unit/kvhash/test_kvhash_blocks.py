"""Block hashes against vLLM's own: golden vectors made by vLLM 0.34.0's code.

``data/vllm-0.34.0-block-hashes.json`` was written by ``data/make_vllm_golden.py`` (kept for
the record, not run by the suite): from the vllm-0.34.0 wheel (PyPI, ``pip download vllm
--no-deps``) it imports ``vllm/utils/hashing.py`` as is and runs ``init_none_hash``,
``get_request_block_hasher``, ``generate_block_hash_extra_keys``, ``hash_block_tokens`` and
``maybe_convert_block_hash`` cut verbatim out of ``vllm/v1/core/kv_cache_utils.py`` (which
cannot be imported without torch), on requests with LoRA adapters, cache salts and
multimodal items, for all four ``--prefix-caching-hash-algo`` values, with
``PYTHONHASHSEED`` unset, ``0`` and ``1234``. CPython 3.11.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubellm.kvhash import (
    HASH_ALGORITHMS,
    BlockHasher,
    ExtraKeys,
    MmSpan,
    UnknownHashAlgorithm,
    UnseededHashError,
    event_hash,
    parse_algo,
    resolve_seed,
)

GOLDEN = json.loads((Path(__file__).parent / "data" / "vllm-0.34.0-block-hashes.json").read_text())
CASES: list[dict[str, Any]] = GOLDEN["cases"]


def _extra(case: dict[str, Any]) -> ExtraKeys:
    return ExtraKeys(lora_name=case["lora_name"], lora_path=case["lora_path"] or "", cache_salt=case["cache_salt"],
                     mm=tuple(MmSpan(i, o, n) for i, o, n in case["mm"]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['algo']}-seed{c['seed']}-{c['case']}")
def test_block_hashes_equal_vllms(case: dict[str, Any]) -> None:
    hasher = BlockHasher(case["algo"], resolve_seed(case["algo"], case["seed"]), case["block_size"])
    assert hasher.root.hex() == case["none_hash"]
    hashes = hasher.hashes(case["token_ids"], _extra(case))
    assert [h.hex() for h in hashes] == case["block_hashes"]
    assert [event_hash(h) for h in hashes] == case["event_hashes"]


def test_golden_vectors_cover_every_algorithm_and_extra_key() -> None:
    assert {c["algo"] for c in CASES} == set(HASH_ALGORITHMS)
    assert {c["case"] for c in CASES} >= {"plain", "lora", "salt", "mm", "lora_salt"}
    # the cases differ: extra keys and seeds change every hash
    firsts = {(c["algo"], c["seed"], c["case"]): c["block_hashes"][0] for c in CASES if c["block_size"] == 16}
    assert len(set(firsts.values())) == len(firsts)


def test_hashing_resumes_from_a_parent() -> None:
    hasher = BlockHasher("sha256", "0", 4)
    tokens = list(range(20))
    whole = hasher.hashes(tokens)
    assert hasher.hashes(tokens, parent=whole[1], start_block=2) == whole[2:]
    assert hasher.hashes(tokens[:3]) == []  # no full block, no hash


def test_xxhash_without_a_seed_cannot_be_matched() -> None:
    with pytest.raises(UnseededHashError, match="PYTHONHASHSEED"):
        resolve_seed("xxhash", None)
    assert resolve_seed("sha256_cbor", None) == "vllm-none-hash"


def test_unknown_algorithm_names_the_ones_offered() -> None:
    with pytest.raises(UnknownHashAlgorithm, match="sha256, sha256_cbor, xxhash, xxhash_cbor"):
        parse_algo("md5")
    assert parse_algo("xxhash_cbor") == "xxhash_cbor"
    with pytest.raises(ValueError, match="block size"):
        BlockHasher("sha256", "0", 0)


def test_kvhash_is_a_leaf_that_imports_nothing_of_kubellm() -> None:
    import ast

    import kubellm.kvhash

    for path in Path(kubellm.kvhash.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kubellm"):
                assert node.module.startswith("kubellm.kvhash"), f"{path.name} imports {node.module}"
