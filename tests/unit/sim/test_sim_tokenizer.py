"""The tokenizer: reversible, consistent counts, close to a BPE's density on prose."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.sim import textgen, tokenizer


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_decode_inverts_encode(text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.count(text) == len(ids)


def test_prose_density_is_close_to_a_bpe_tokenizer() -> None:
    prose = ("Kubernetes schedules pods onto nodes, and the inference gateway routes each request "
             "to the replica whose cache already holds the longest prefix of its prompt. ") * 20
    chars_per_token = len(prose) / tokenizer.count(prose)
    assert 3.0 <= chars_per_token <= 5.0


def test_same_text_same_ids_and_prefixes_share_ids() -> None:
    a = tokenizer.encode("You are a helpful assistant. Answer briefly.")
    b = tokenizer.encode("You are a helpful assistant. Answer at length.")
    assert a == tokenizer.encode("You are a helpful assistant. Answer briefly.")
    assert a[:6] == b[:6]


def test_foreign_ids_are_rejected() -> None:
    try:
        tokenizer.decode([5])
    except ValueError as exc:
        assert "not a simulator token id" in str(exc)
    else:
        raise AssertionError("decode accepted an id it never produced")


def test_output_words_are_single_tokens_and_deterministic() -> None:
    vocab = textgen.build_vocab()
    for text, token_id in zip(vocab.texts, vocab.ids):
        assert tokenizer.encode(text) == [token_id]
    assert textgen.draw_tokens(vocab, 50, 7, 10) == textgen.draw_tokens(vocab, 50, 7, 10)
    assert textgen.draw_tokens(vocab, 50, 7, 10) != textgen.draw_tokens(vocab, 50, 8, 10)
