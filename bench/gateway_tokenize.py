"""Cost of precise routing per request: tokenize (model tokenizer + chat template) and hash.

No real model's tokenizer can be downloaded here, so the bench trains a byte-level BPE
with Llama 3's vocabulary size (128k is out of reach of a quick training run: 32k merges)
on generated English-like text, and renders a Llama-3-shaped chat template. It reports
p50/p99 per request of (a) chat template + tokenization and (b) vLLM block hashing
(sha256, block size 16) for ~1k- and ~8k-token prompts.

    .venv/bin/python bench/gateway_tokenize.py [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from kubellm.gateway.tokenizers import load_hf_tokenizer
from kubellm.kvhash import BlockHasher

TEMPLATE = ("{{- bos_token }}{%- for m in messages %}{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
            " + m['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}"
            "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


def _words(rng: random.Random, n: int) -> str:
    syll = ["ka", "lo", "mi", "ne", "tor", "an", "ex", "ing", "tion", "re", "st", "pro", "de", "ver", "ul"]
    return " ".join("".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(n)) + "."


def make_tokenizer(directory: Path, rng: random.Random) -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=32_000, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((_words(rng, 200) for _ in range(20_000)), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": TEMPLATE}))


def _pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as d:
        make_tokenizer(Path(d), rng)
        tok = load_hf_tokenizer(Path(d))
    hasher = BlockHasher("sha256", "vllm-none-hash", 16)
    for target in (1000, 8000):
        text = _words(rng, 10)
        while len(tok.completion_ids(text)) < target:
            text += " " + _words(rng, 50)
        tokenize, hashing, n = [], [], 0
        for i in range(args.runs):
            body = {"messages": [{"role": "system", "content": text}, {"role": "user", "content": f"question {i}"}]}
            t0 = time.perf_counter()
            ids = tok.chat_ids(body)
            t1 = time.perf_counter()
            hasher.event_hashes(ids)
            t2 = time.perf_counter()
            tokenize.append((t1 - t0) * 1e3)
            hashing.append((t2 - t1) * 1e3)
            n = len(ids)
        print(f"{n:5d} tokens: tokenize+template p50 {statistics.median(tokenize):.2f} ms p99 {_pct(tokenize, .99):.2f} ms"
              f" | block hashes p50 {statistics.median(hashing):.2f} ms p99 {_pct(hashing, .99):.2f} ms")


if __name__ == "__main__":
    main()
