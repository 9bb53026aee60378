"""The engine's block hashes of a request, for the precise-prefix scorer (pure but for the
tokenizer's files, read once when built).

A model's :class:`PreciseHasher` joins its tokenizer (:mod:`kubellm.gateway.tokenizers`)
and vLLM's block hashing (:mod:`kubellm.kvhash`) configured as its engines are: hash
algorithm, ``PYTHONHASHSEED``, block size, and for LoRA requests the adapter's name and
path. The result is the 64-bit hashes the engines' KV events carry for the prompt's full
blocks; () when the prompt cannot be tokenized as the engine would.
"""

from __future__ import annotations

from typing import Any

from kubellm.gateway.config import ModelConfig
from kubellm.gateway.payload import ParsedRequest
from kubellm.gateway.tokenizers import PromptError, PromptTokenizer, load_tokenizer
from kubellm.kvhash import BlockHasher, ExtraKeys, event_hash, resolve_seed


class PreciseHasher:
    def __init__(self, tokenizer: PromptTokenizer, hasher: BlockHasher, lora_paths: dict[str, str]) -> None:
        self.tokenizer = tokenizer
        self.hasher = hasher
        self._lora_paths = lora_paths

    def token_ids(self, parsed: ParsedRequest) -> list[int]:
        if parsed.kind == "chat":
            return self.tokenizer.chat_ids(parsed.body)
        return self.tokenizer.completion_ids(parsed.body.get("prompt"))

    def extra_keys(self, body: dict[str, Any], lora: str | None) -> ExtraKeys:
        salt = body.get("cache_salt")
        return ExtraKeys(lora_name=lora, lora_path=self._lora_paths.get(lora, lora) if lora else "",
                         cache_salt=salt if isinstance(salt, str) else None)

    def event_hashes(self, parsed: ParsedRequest, lora: str | None) -> tuple[int, ...]:
        """The engines' KV-event hashes of the prompt's full blocks; () when not computable."""
        if parsed.kind == "embeddings":
            return ()
        try:
            ids = self.token_ids(parsed)
        except PromptError:
            return ()
        extra = self.extra_keys(parsed.body, lora)
        return tuple(event_hash(h) for h in self.hasher.hashes(ids, extra))


def build_precise_hasher(model: ModelConfig) -> PreciseHasher | None:
    """The model's hasher, or None when it routes approximately (a warning says why)."""
    tokenizer = load_tokenizer(model.name, model.precise_tokenizer, model.tokenizer_path)
    if tokenizer is None:
        return None
    seed = resolve_seed(model.kv_hash_algo, model.kv_hash_seed)  # config validation refused the unmatchable
    return PreciseHasher(tokenizer, BlockHasher(model.kv_hash_algo, seed, model.kv_block_size), dict(model.lora_paths))
