"""Make a small real tokenizer directory (byte-level BPE, Llama-3 special tokens and chat template)."""
import json, sys
from pathlib import Path
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
corpus = [
    "You are a careful assistant. Answer briefly and cite the passage you used.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "Kubernetes schedules pods onto nodes; a Deployment keeps replicas running; a Service routes traffic.",
    "def main():\n    print('hello, world')\n    return 0\n",
    "Prefix caching reuses the KV blocks of a shared prompt prefix across requests.",
    "Ünïcödé text, emojis 🚀 and numbers 12345 67890 also appear in prompts.",
] * 20
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                              show_progress=False)
tok.train_from_iterator(corpus, trainer)
bos = tok.token_to_id("<|begin_of_text|>")
tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                   special_tokens=[("<|begin_of_text|>", bos)])
tok.save(str(out / "tokenizer.json"))
template = (
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] not in ['system', 'user', 'assistant'] %}\n"
    "        {{- raise_exception('unknown role ' + message['role']) }}\n"
    "    {%- endif %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n")
(out / "tokenizer_config.json").write_text(json.dumps({
    "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": template,
    "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072, "clean_up_tokenization_spaces": True,
}, indent=1))
