"""The mixture's rehydration (FineWeb-2): a dedup survivor comes back as many times as the weights table gives
its duplicate cluster's size, capped; through the real shard build, on spaCy's example sentences in seven
languages (Latin, Cyrillic, Han, kana, Hangul, Arabic, Devanagari)."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sharding_corpus import write_corpus

from schemas import DUP_CLUSTER_SIZE, Document, make_doc_id
from sharding.build import build_stage_shards
from sharding.mixture import MixtureConfig, Rehydration

# language -> the duplicate cluster size dedup left on its document (None: a unique document, no key)
SIZES = {"de": None, "ru": 1, "zh": 2, "ja": 4, "ko": 100, "ar": 1000, "hi": 7}
FINEWEB2_COPIES = {
    "de": 1,
    "ru": 1,
    "zh": 2,
    "ja": 3,
    "ko": 8,
    "ar": 1,
    "hi": 5,
}  # {1:1, 2:2, 3:3, 5:5, 100:8, 1000:1}
SHARDS = {"tokenizer": "o200k_harmony", "seq_len": 2}  # 2: the dropped tail never holds a document's first token


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    docs, ids = [], {}
    for lang, size in SIZES.items():
        text = "\n".join(importlib.import_module(f"spacy.lang.{lang}.examples").sentences)
        doc = Document(
            make_doc_id("spacy-examples", lang, text),
            text,
            "spacy-examples",
            "web",
            lang=lang,
            metadata={} if size is None else {DUP_CLUSTER_SIZE: size, "other": "kept as is"},
        )
        docs.append(doc)
        ids[doc.id] = lang
    return write_corpus(docs, tmp_path_factory.mktemp("corpus") / "docs"), ids


def placed_copies(out: Path, ids: dict[str, str]) -> dict[str, list[int]]:
    """Per language, the sorted repeat indices of its document's first pieces in the published shards."""
    placements = pq.read_table(out / "general" / "placements").to_pylist()
    seen = Counter((ids[p["doc_id"]], p["repeat"]) for p in placements if p["doc_token_offset"] == 0)
    assert max(seen.values()) == 1  # (document, repeat) names one copy
    return {lang: sorted(r for (la, r) in seen if la == lang) for lang in SIZES}


def test_fineweb2_weights_repeat_each_document_by_its_cluster_size(corpus, tmp_path) -> None:
    docs, ids = corpus
    stats = build_stage_shards(docs, tmp_path, "general", {"seed": 1, "rehydrate": {}}, SHARDS)
    assert placed_copies(tmp_path, ids) == {lang: list(range(n)) for lang, n in FINEWEB2_COPIES.items()}
    (row,) = stats["budget"]
    assert row["docs"] == len(SIZES) and row["selected_tokens"] == row["available_tokens"]  # one rehydrated pass


def test_max_copies_caps_and_no_table_keeps_one_copy(corpus, tmp_path) -> None:
    docs, ids = corpus
    build_stage_shards(docs, tmp_path / "capped", "general", {"rehydrate": {"max_copies": 3}}, SHARDS)
    capped = {lang: min(n, 3) for lang, n in FINEWEB2_COPIES.items()}
    assert placed_copies(tmp_path / "capped", ids) == {lang: list(range(n)) for lang, n in capped.items()}
    for mixture in ({}, {"rehydrate": {"enabled": False}}):
        out = tmp_path / f"plain-{len(mixture)}"
        build_stage_shards(docs, out, "general", mixture, SHARDS)
        assert placed_copies(out, ids) == {lang: [0] for lang in SIZES}


def test_dry_run_counts_the_copies(corpus, tmp_path) -> None:
    docs, _ = corpus
    plain = build_stage_shards(docs, tmp_path / "a", "general", {}, SHARDS, dry_run=True)["budget"][0]
    rehydrated = build_stage_shards(docs, tmp_path / "b", "general", {"rehydrate": {}}, SHARDS, dry_run=True)
    # 22 copies of 7 documents: about three times the tokens (the documents differ in length).
    assert 2 * plain["available_tokens"] < rehydrated["budget"][0]["available_tokens"] < 5 * plain["available_tokens"]


def test_weights_follow_the_largest_size_not_above_and_the_cap() -> None:
    r = Rehydration(weights={"2": 4, "10": 2}, max_copies=3)
    assert r.copies(np.array([1, 2, 9, 10, 10**6])).tolist() == [1, 3, 3, 2, 2]


@pytest.mark.parametrize(
    ("rehydrate", "match"),
    [
        ({"weights": {"two": 2}}, r"weights key 'two': must be a cluster size"),
        ({"weights": {"2": 0}}, r"weights.2 = 0: copies must be >= 1"),
        ({"weights": {"2": 1.5}}, r"rehydrate.weights.2 = 1.5: expected an integer"),
        ({"max_copies": 0}, r"max_copies = 0: must be >= 1"),
        ({"cap": 3}, r"rehydrate.cap = 3: expected a known key"),
    ],
)
def test_a_bad_rehydrate_table_names_the_key(rehydrate, match) -> None:
    with pytest.raises(ValueError, match=match):
        MixtureConfig.from_dict({"rehydrate": rehydrate})
