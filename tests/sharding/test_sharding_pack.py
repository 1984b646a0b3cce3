"""Packing internals: vectorised pieces against a token-by-token walk, balanced work ranges, and token-cache
files that do not depend on how the work was split or on the thread count."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sharding_corpus import write_corpus

from schemas import Document, make_doc_id
from sharding import chunks as chunking
from sharding import pack
from sharding.chunks import list_chunks, tokenize_corpus
from sharding.doc_table import DocTable, load_doc_table
from sharding.pack import Bucket, plan_sequences, shard_pieces
from sharding.tokenizer import load_tokenizer


def synthetic_docs(lengths: np.ndarray) -> DocTable:
    z = np.zeros(lengths.size, dtype=np.int32)
    return DocTable(
        pa.array([f"d{i}" for i in range(lengths.size)]),
        z,
        z,
        ["s"],
        ["web"],
        lengths.astype(np.int64),
        z,
        np.zeros(lengths.size, dtype=np.int64),
        [],
    )


def walk_pieces(plan, seq_len: int) -> list[tuple]:
    """Reference: lay every stream out token by token (ids then EOT), cut each planned sequence, and group
    consecutive tokens of one document into a piece."""
    layouts = []
    for s in plan.streams:
        sizes = np.diff(np.concatenate([[0], s.ends]))
        slot = np.repeat(np.arange(sizes.size), sizes)
        pos = np.arange(int(sizes.sum())) - np.repeat(s.ends - sizes, sizes)
        layouts.append((slot, pos, sizes[slot]))
    out = []
    for k, (b, q) in enumerate(plan.order.tolist()):
        slot, pos, size = (a[q * seq_len : (q + 1) * seq_len] for a in layouts[b])
        i = 0
        while i < seq_len:
            j = i
            while j < seq_len and slot[j] == slot[i]:
                j += 1
            is_eot = pos[j - 1] == size[i] - 1
            stream = plan.streams[b]
            out.append(
                (
                    k,
                    b,
                    int(stream.docs[slot[i]]),
                    int(stream.repeats[slot[i]]),
                    int(pos[i]),
                    j - i - int(is_eot),
                    bool(is_eot),
                    k * seq_len + i,
                )
            )
            i = j
    return out


@pytest.mark.parametrize("buckets", [[Bucket("all")], [Bucket("long", 40, None, 0.5), Bucket("short", 0, 39, 0.5)]])
def test_shard_pieces_match_a_token_by_token_walk(buckets):
    rng = np.random.default_rng(1)
    # Empty documents (EOT only), documents longer than a sequence, and everything between.
    lengths = np.concatenate([rng.integers(0, 30, 300), rng.integers(60, 200, 40), np.zeros(10, dtype=np.int64)])
    docs = synthetic_docs(lengths)
    reps = np.zeros(lengths.size, dtype=np.int32)
    reps[::3] = 1
    seq_len = 64
    plan = plan_sequences(docs, np.arange(lengths.size), reps, seq_len, buckets, seed=5)
    n = plan.stats["num_sequences"]
    assert n > 50
    expected = walk_pieces(plan, seq_len)
    for first, stop in [(0, n), (7, 23), (n - 1, n)]:
        p = shard_pieces(plan, first, stop, seq_len)
        got = list(
            zip(
                p.sequence.tolist(),
                p.stream.tolist(),
                p.doc.tolist(),
                p.repeat.tolist(),
                p.doc_start.tolist(),
                p.num_ids.tolist(),
                p.eot.tolist(),
                (p.offset + first * seq_len).tolist(),
            )
        )
        want = [e for e in expected if first <= e[0] < stop]
        assert got == want
        assert int(p.num_ids.sum() + p.eot.sum()) == (stop - first) * seq_len
    assert any(e[5] == 0 and e[6] for e in expected)  # a piece that is only an EOT
    assert any(e[4] > 0 for e in expected)  # a document continued from the previous sequence


def test_row_ranges_are_contiguous_and_balanced_by_bytes():
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 5000, 2000)] + ["y" * 200_000] + ["z" * 10] * 500
    column = pa.array(texts, pa.large_string()).slice(3)  # a sliced array: offsets start mid-buffer
    target = 100_000
    ranges = chunking.row_ranges(column, target)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(column)
    assert all(a < b and b == c for (a, b), (c, _) in pairwise(ranges))
    sizes = [sum(len(t) for t in texts[3 + a : 3 + b]) for a, b in ranges]
    assert sum(sizes) == sum(len(t) for t in texts[3:])
    assert max(sizes) <= target + 200_000 and len(ranges) >= sum(sizes) // target - 2
    assert sorted(sizes)[len(sizes) // 2] > target // 2  # not cut into slivers
    assert chunking.text_lengths(column).tolist() == [len(t) for t in texts[3:]]


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    rng = np.random.default_rng(2)
    words = ["alpha", "beta", "gamma", "délta", "ε", "日本語", "code()", "\n", "  ", "1234567"]
    docs = []
    for i in range(400):
        text = " ".join(rng.choice(words, int(rng.integers(0, 400))))
        docs.append(Document(make_doc_id("syn", str(i), text), text, "syn" if i % 3 else "other", "web"))
    return write_corpus(docs, tmp_path / "docs", rows_per_file=150)


def test_token_cache_does_not_depend_on_work_split_or_threads(small_corpus, tmp_path, monkeypatch):
    tok = load_tokenizer("o200k_harmony")
    chunks, _ = list_chunks(small_corpus, f"{tok.name}:{tok.vocab_sha256}")
    one = tokenize_corpus(chunks, tok.name, tmp_path / "one", num_proc=1)
    monkeypatch.setattr(chunking, "WORK_BYTES", 997)  # dozens of ranges per chunk, finished out of order
    monkeypatch.setattr(chunking, "MIN_WORK_BYTES", 1)
    three = tokenize_corpus(chunks, tok.name, tmp_path / "three", num_proc=3)
    assert one == three and one["docs"] == 400
    for c in chunks:
        for suffix in (".tok", ".len.npy"):
            name = f"{c.key}{suffix}"
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "three" / name).read_bytes()
    docs = load_doc_table(chunks, [tmp_path / "three" / c.key for c in chunks])
    texts = [t for c in chunks for column in chunking.read_text(c, 5000) for t in column.to_pylist()]
    for d in (0, 1, 151, 399):
        out = np.zeros(int(docs.lengths[d]), dtype=np.uint32)
        docs.gather(out, np.array([d]), np.array([0]), np.array([out.size]), np.array([0]))
        assert out.tolist() == tok.encode_ordinary(texts[d])


def test_a_cut_token_file_is_tokenized_again(small_corpus, tmp_path):
    tok = load_tokenizer("o200k_harmony")
    chunks, _ = list_chunks(small_corpus, f"{tok.name}:{tok.vocab_sha256}")
    tokenize_corpus(chunks, tok.name, tmp_path)
    victim = tmp_path / f"{chunks[1].key}.tok"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])  # as a crash can leave a renamed but short file
    stats = tokenize_corpus(chunks, tok.name, tmp_path)
    assert stats["chunks_tokenized"] == 1 and victim.read_bytes() == good


def test_an_empty_length_bucket_does_not_empty_the_stage():
    """Only long documents (a books-only long_context run): the short bucket has none, the long one still fills
    the stage instead of the mix collapsing to zero sequences."""
    lengths = np.full(20, 150, dtype=np.int64)
    docs = synthetic_docs(lengths)
    buckets = [Bucket("long", 100, None, 0.75), Bucket("short", 0, 99, 0.25)]
    plan = plan_sequences(docs, np.arange(lengths.size), np.zeros(lengths.size, dtype=np.int32), 64, buckets, seed=1)
    stats = plan.stats["buckets"]
    # (fractions round down: int(int(47 / 0.75) * 0.75) = 46 of the 47 available)
    assert (
        stats["short"]["sequences"] == 0
        and stats["long"]["sequences"] >= stats["long"]["sequences_available"] - 1 > 40
    )
    assert plan.stats["num_sequences"] == stats["long"]["sequences"]


def test_a_budget_smaller_than_every_document_still_selects_one():
    """The fractional pass takes whole documents; a budget below the smallest document (a source with a tiny
    share) selects one document instead of none, and a zero budget selects none."""
    docs = synthetic_docs(np.array([40, 50, 60]))
    idx, reps, realized = pack.select_documents(docs, {"s": 7}, seed=0)
    assert idx.size == 1 and reps.tolist() == [0] and realized["s"] == int(docs.lengths[idx[0]]) + 1
    idx0, _, realized0 = pack.select_documents(docs, {"s": 0}, seed=0)
    assert idx0.size == 0 and realized0["s"] == 0
