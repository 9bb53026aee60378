"""The model's own tokenizer in the gateway: token ids equal to what vLLM computes.

``data/tiny-llama3-tokenizer`` is a real Hugging Face tokenizer made by
``data/make_tiny_tokenizer.py`` (byte-level BPE trained with ``tokenizers``, Llama 3's
special tokens, BOS post-processor and chat-template shape). ``data/tiny-llama3-token-ids.json``
holds the ids ``transformers`` 5.25 gives (``data/make_token_ids_with_transformers.py``), the
way vLLM tokenizes: a chat is rendered with ``apply_chat_template(tokenize=False)`` then
encoded without special tokens; a completion prompt is encoded with them.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from kubellm.gateway.tokenizers import HfTokenizer, PromptError, SimTokenizer, load_hf_tokenizer, load_tokenizer

DATA = Path(__file__).parent / "data"
TOKENIZER_DIR = DATA / "tiny-llama3-tokenizer"
GOLDEN = json.loads((DATA / "tiny-llama3-token-ids.json").read_text())


@pytest.fixture(scope="module")
def hf() -> HfTokenizer:
    return load_hf_tokenizer(TOKENIZER_DIR)


@pytest.mark.parametrize("case", GOLDEN["chats"], ids=lambda c: str(len(c["ids"])))
def test_chat_ids_equal_transformers(hf: HfTokenizer, case: dict[str, Any]) -> None:
    assert hf.chat_ids(case["body"]) == case["ids"]


@pytest.mark.parametrize("case", GOLDEN["completions"], ids=lambda c: str(len(c["ids"])))
def test_completion_ids_equal_transformers(hf: HfTokenizer, case: dict[str, Any]) -> None:
    assert hf.completion_ids(case["prompt"]) == case["ids"]
    assert hf.completion_ids([case["prompt"]]) == case["ids"]


def test_token_id_prompts_pass_through_and_batches_are_refused(hf: HfTokenizer) -> None:
    assert hf.completion_ids([5, 6, 7]) == [5, 6, 7]
    assert hf.completion_ids([[5, 6]]) == [5, 6]
    with pytest.raises(PromptError):
        hf.completion_ids(["a", "b"])


def test_template_refusal_is_a_prompt_error(hf: HfTokenizer) -> None:
    with pytest.raises(PromptError, match="unknown role tool"):
        hf.chat_ids({"messages": [{"role": "tool", "content": "x"}]})


def test_chat_template_jinja_file_wins(tmp_path: Path) -> None:
    shutil.copytree(TOKENIZER_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    tok = load_hf_tokenizer(tmp_path)
    assert tok.chat_ids({"messages": [{"role": "user", "content": "fox"}]}) == tok.completion_ids("fox")[1:]


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_bad_tokenizer_file_warns_once_naming_model_and_file(tmp_path: Path, damage: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    if damage == "garbage":
        (tmp_path / "tokenizer.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="kubellm.gateway.tokenizers"):
        assert load_tokenizer("llama-8b", "hf", tmp_path) is None
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "'llama-8b'" in message and str(tmp_path / "tokenizer.json") in message and "approximate" in message


def test_kinds() -> None:
    assert isinstance(load_tokenizer("m", "sim", None), SimTokenizer)
    assert load_tokenizer("m", None, TOKENIZER_DIR) is None
    assert isinstance(load_tokenizer("m", "hf", TOKENIZER_DIR), HfTokenizer)
