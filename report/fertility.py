"""Tokenizer fertility per language: tokens per character and per word, for the curriculum's tokenizers.

A word is what the prose filters count (`filters.text_features.tokenizer_for(lang).words`: ICU for Chinese,
Japanese, Thai, Khmer, Lao, Myanmar; the Tibetan syllable rule; spaCy elsewhere), less tokens without a letter or
digit (punctuation, which spaCy returns as tokens of their own), so that a language written without spaces is
measured against its words, not against its sentences. Fertility says how much of a sequence a language costs:
at 2.5 tokens per word a language fits half as much text in a 4,096-token window as one at 1.25.

`benchmarks/bench_fertility.py` prints the table on spaCy's example sentences; the run report computes it on a
sample of the final corpus (`report.data`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TOKENIZERS = ("o200k_harmony", "qwen")  # the two tokenizers `[shards] tokenizer` may name (sharding/tokenizer.py)


def count_words(text: str, lang: str) -> int:
    """Words of `text` by the filters' segmenter of `lang`, punctuation-only tokens left out."""
    from filters.text_features import tokenizer_for

    return sum(1 for w in tokenizer_for(lang).words(text) if any(c.isalnum() for c in w))


def fertility(
    texts_by_lang: Mapping[str, Iterable[str]], tokenizers: Iterable[str] = TOKENIZERS
) -> list[dict[str, Any]]:
    """One row per language (sorted by code): documents, characters, words and, per tokenizer, its tokens, tokens per
    character and tokens per word (None without words, e.g. for a language the corpus does not name).

    Args:
        texts_by_lang: language code (a language-ID label: "zh-Hans", "sr-Cyrl") -> its texts.
        tokenizers: names `sharding.tokenizer.load_tokenizer` knows.
    """
    from sharding.tokenizer import load_tokenizer

    loaded = {name: load_tokenizer(name) for name in tokenizers}
    rows = []
    for lang in sorted(texts_by_lang):
        texts = [t for t in texts_by_lang[lang] if t]
        chars = sum(len(t) for t in texts)
        words = sum(count_words(t, lang) for t in texts)
        row: dict[str, Any] = {"lang": lang, "docs": len(texts), "chars": chars, "words": words}
        for name, tok in loaded.items():
            n = int(tok.encode_batch_np(texts)[1].sum()) if texts else 0
            row[f"{name}_tokens"] = n
            row[f"{name}_per_char"] = round(n / chars, 4) if chars else None
            row[f"{name}_per_word"] = round(n / words, 4) if words else None
        rows.append(row)
    return rows
