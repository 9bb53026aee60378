"""A model's precise hasher: the engine's KV-event hashes of a request, from its own tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.payload import parse_request
from kubellm.gateway.precise import build_precise_hasher
from kubellm.kvhash import BlockHasher, ExtraKeys

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "tiny-llama3-token-ids.json").read_text())


def _model(**kw: object) -> ModelConfig:
    return ModelConfig.model_validate({"name": "m", "precise_tokenizer": "hf",
                                       "tokenizer_path": str(DATA / "tiny-llama3-tokenizer"), "kv_block_size": 4, **kw})


def test_chat_hashes_are_the_engines_block_hashes() -> None:
    case = GOLDEN["chats"][0]
    hasher = build_precise_hasher(_model(kv_hash_algo="sha256_cbor", kv_hash_seed="42"))
    assert hasher is not None
    parsed = parse_request("chat", json.dumps({"model": "m", **case["body"]}).encode())
    expected = BlockHasher("sha256_cbor", "42", 4).event_hashes(case["ids"])
    assert hasher.event_hashes(parsed, None) == tuple(expected) and len(expected) == len(case["ids"]) // 4


def test_lora_and_cache_salt_name_other_blocks() -> None:
    case = GOLDEN["completions"][1]
    hasher = build_precise_hasher(_model(lora_paths={"sql": "/adapters/sql"}))
    assert hasher is not None
    body = {"model": "m", "prompt": case["prompt"]}
    plain = hasher.event_hashes(parse_request("completions", json.dumps(body).encode()), None)
    lora = hasher.event_hashes(parse_request("completions", json.dumps(body).encode()), "sql")
    salted = hasher.event_hashes(parse_request("completions", json.dumps({**body, "cache_salt": "t1"}).encode()), None)
    base = BlockHasher("sha256", "vllm-none-hash", 4)
    assert plain == tuple(base.event_hashes(case["ids"]))
    assert lora == tuple(base.event_hashes(case["ids"], ExtraKeys(lora_name="sql", lora_path="/adapters/sql")))
    assert len({plain[0], lora[0], salted[0]}) == 3


def test_prompts_it_cannot_tokenize_get_no_hashes() -> None:
    hasher = build_precise_hasher(_model())
    assert hasher is not None
    batch = parse_request("completions", b'{"model": "m", "prompt": ["a", "b"]}')
    assert hasher.event_hashes(batch, None) == ()
    embed = parse_request("embeddings", b'{"model": "m", "input": "a b c d e f g h"}')
    assert hasher.event_hashes(embed, None) == ()


def test_missing_tokenizer_means_approximate_routing(tmp_path: Path) -> None:
    assert build_precise_hasher(_model(tokenizer_path=str(tmp_path))) is None


def test_unseeded_xxhash_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="set the same PYTHONHASHSEED"):
        _model(kv_hash_algo="xxhash")
    assert _model(kv_hash_algo="xxhash", kv_hash_seed="0").kv_hash_seed == "0"
