"""Token ids as vLLM computes them, with transformers (vLLM's own tokenizer layer)."""
import json, sys, transformers
from typing import Any
from transformers import AutoTokenizer
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
system = "You are a careful assistant. Answer briefly and cite the passage you used. " * 3
chats: list[dict[str, Any]] = [
    {"messages": [{"role": "system", "content": system}, {"role": "user", "content": "Where do pods run?"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Pack my box"}, {"type": "text", "text": "with jugs 🚀"}]}]},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}],
     "add_generation_prompt": False},
]
out: dict[str, Any] = {"transformers": transformers.__version__, "chats": [], "completions": []}
for body in chats:
    msgs = [dict(m, content="\n".join(p["text"] for p in m["content"]) if isinstance(m["content"], list) else m["content"]) for m in body["messages"]]
    # vLLM: apply_chat_template(tokenize=False), then encode without special tokens
    text = tok.apply_chat_template(msgs, add_generation_prompt=body.get("add_generation_prompt", True), tokenize=False)
    out["chats"].append({"body": body, "text": text, "ids": tok(text, add_special_tokens=False)["input_ids"]})
for prompt in ["The quick brown fox", "def main():\n    return 0\n" * 4]:
    out["completions"].append({"prompt": prompt, "ids": tok(prompt)["input_ids"]})  # vLLM: add_special_tokens=True
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
