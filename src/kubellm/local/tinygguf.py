"""Write a tiny, real GGUF model: llama architecture, random weights, a small vocabulary.

llama.cpp loads it and generates tokens on a CPU in milliseconds, so tests (and demos)
exercise the real engine with no download. The text it writes is nonsense by design.
Needs the ``gguf`` package (in kubellm's ``test`` extra) and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
    "but not what all were we when your can said there use an each which she do how their if will up other about "
    "out many then them these so some her would make like him into time has look two more write go see number no "
    "way could people my than first water been call who oil its now find long down day did get come made may part "
    "model token cloud queue cache replica gateway engine scale serve local fast small tiny hello world yes ok"
).split()


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    """SentencePiece-style pieces: specials, the 256 byte pieces llama.cpp falls back on, words."""
    import gguf

    tokens = [b"<unk>", b"<s>", b"</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>".encode() for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = sorted({f"\u2581{w}" for w in WORDS} | {chr(c) for c in range(ord("a"), ord("z") + 1)} | {"\u2581"})
    tokens += [p.encode() for p in pieces]
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(len(p)) * 0.1 for p in pieces]  # prefer longer pieces when merging
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(path: Path, *, embedding: int = 64, layers: int = 2, heads: int = 4, ff: int = 128,
                     context: int = 512, seed: int = 0) -> Path:
    """Write the model to *path* and return it."""
    import gguf

    tokens, scores, types = _vocab()
    vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.08).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("kubellm-tiny-llama")
    writer.add_context_length(context)
    writer.add_embedding_length(embedding)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(embedding // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    # numpy shapes are (rows, cols): the reverse of ggml's ne order.
    writer.add_tensor("token_embd.weight", weight(vocab, embedding))
    writer.add_tensor("output_norm.weight", np.ones(embedding, dtype=np.float32))
    writer.add_tensor("output.weight", weight(vocab, embedding))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(embedding, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(embedding, embedding))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(embedding, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ff, embedding))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(ff, embedding))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(embedding, ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
