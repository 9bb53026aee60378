"""Tokenizers that reproduce an engine's prompt token ids, for the precise-prefix scorer.

Only the simulator's is built (``precise_tokenizer: sim``): it is an adapter over
:mod:`kubellm.sim`'s chat template, tokenizer and block hashing, which the simulator
publishes for KV-aware routers. A real model would need its Hugging Face tokenizer and
chat template (not built).
"""

from __future__ import annotations

from kubellm.gateway.payload import ParsedRequest


def sim_token_hashes(parsed: ParsedRequest, block_size: int, lora: str | None) -> tuple[int, ...]:
    """The simulator's block hashes of the prompt; () when it would reject the prompt anyway."""
    from kubellm.sim import SimError, kvcache, openai_api, tokenizer

    try:
        if parsed.kind == "chat":
            ids = tokenizer.encode(openai_api.render_chat(parsed.body.get("messages")))
        else:
            ids = openai_api.completion_prompt_ids(parsed.body.get("prompt"))
    except (SimError, ValueError, TypeError):
        return ()
    return tuple(kvcache.block_hashes(ids, block_size, lora))
