"""Exact dedup: literal texts, normalization, first-survivor rule, and the on-disk partition path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dedup.clusters import DupDecision, KeySpill, UnionFind, format_bytes
from dedup.exact import ExactDedup, normalize_text
from dedup.minhash import MinHashDedup


def test_normalize_text_nfkc_lower_whitespace() -> None:
    assert normalize_text("  Hello\t\tWORLD \n") == "hello world"
    assert normalize_text("ｈｅｌｌｏ\u00a0ﬁne") == "hello fine"  # full-width, NBSP and the fi ligature fold
    assert normalize_text("hello, world") != normalize_text("hello world")  # punctuation is kept


def test_exact_clusters_first_in_stream_survives(tmp_path: Path) -> None:
    docs = [
        ("a", "Hello  World"),
        ("b", "hello world"),
        ("c", "Something else entirely."),
        ("d", "HELLO\tWORLD\n"),
        ("e", "something else   ENTIRELY."),
        ("f", "Unique text."),
    ]
    res = ExactDedup(workdir=tmp_path).find_duplicates(docs)
    assert dict(res.items()) == {
        "a": DupDecision("a", 3, True),
        "b": DupDecision("a", 3, False),
        "c": DupDecision("c", 2, True),
        "d": DupDecision("a", 3, False),
        "e": DupDecision("c", 2, False),
    }
    assert "f" not in res and res.get("f") is None
    assert (res.num_docs, res.num_clusters, res.num_removed) == (6, 2, 3)
    assert list(tmp_path.iterdir()) == []  # its own sub-directory is removed


def test_exact_without_normalization_needs_identical_text() -> None:
    res = ExactDedup(normalize=False).find_duplicates([("a", "Hello"), ("b", "hello"), ("c", "Hello")])
    assert dict(res.items()) == {"a": DupDecision("a", 2, True), "c": DupDecision("a", 2, False)}


def test_exact_rejects_repeated_doc_id() -> None:
    with pytest.raises(ValueError, match="appears more than once"):
        ExactDedup().find_duplicates([("a", "x"), ("a", "x")])


def test_union_find_root_is_smallest_index() -> None:
    uf = UnionFind(8)
    uf.union(np.array([5, 3, 7, 6]), np.array([3, 1, 6, 5]))
    roots = uf.roots()
    assert roots.tolist() == [0, 1, 2, 1, 4, 1, 1, 1]


def _components(spill: KeySpill, n: int) -> list[int]:
    uf = UnionFind(n)
    for u, v in spill.edges():
        uf.union(u, v)
    return uf.roots().tolist()


@pytest.mark.parametrize("two_keys", [False, True])
def test_keyspill_partitioned_equals_in_memory(tmp_path: Path, two_keys: bool) -> None:
    rng = np.random.default_rng(0)
    n = 5000
    k = rng.integers(0, 1500, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # ~3 docs per key
    k2 = (k >> np.uint64(7)) if two_keys else None
    idx = np.arange(n, dtype=np.uint32)
    big = KeySpill(tmp_path / "big.bin", two_keys, max_memory_mb=64)
    tiny = KeySpill(tmp_path / "tiny.bin", two_keys, max_memory_mb=0.005)  # ~100 records per sort
    for sp in (big, tiny):
        for s in range(0, n, 700):
            sp.append(k[s : s + 700], idx[s : s + 700], None if k2 is None else k2[s : s + 700])
    assert tiny.max_sort_records < n
    expected = _components(big, n)
    assert _components(tiny, n) == expected
    first = {}
    for i, key in enumerate(k.tolist()):
        first.setdefault(key, i)
    assert expected == [first[key] for key in k.tolist()]


def test_keyspill_one_huge_bucket(tmp_path: Path) -> None:
    # All keys equal: partitioning cannot split them, the chunked one-key path must still join all.
    n = 3000
    sp = KeySpill(tmp_path / "same.bin", False, max_memory_mb=0.005)
    sp.append(np.full(n, 42, np.uint64), np.arange(n, dtype=np.uint32))
    assert _components(sp, n) == [0] * n


def test_exact_spilling_run_matches_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    docs = [(f"d{i}", f"text number {int(rng.integers(0, 700))}") for i in range(3000)]
    big = ExactDedup(max_memory_mb=64).find_duplicates(docs)
    tiny = ExactDedup(max_memory_mb=0.01, workdir=tmp_path).find_duplicates(docs)
    assert dict(tiny.items()) == dict(big.items())
    assert len(big) > 2000


@pytest.mark.parametrize("method", [ExactDedup, MinHashDedup])
@pytest.mark.parametrize("num_docs", [1_000_000, 100_000_000])
def test_memory_estimate_counts_the_union_find_it_builds(method, num_docs: int) -> None:
    """The RAM figure is the union-find the clustering builds (its parent array, measured on 1,000 documents, per
    document) times the documents, plus the spill buffers: it fails if the estimate drops or miscounts either."""
    per_doc = UnionFind(1000).parent.nbytes // 1000
    buffers_mb = 64
    estimate = method(max_memory_mb=buffers_mb).memory_estimate(num_docs)
    assert f"~{format_bytes(per_doc * num_docs + buffers_mb * 2**20)} RAM" in estimate, estimate
    assert f"union-find {per_doc} B/doc + {buffers_mb} MiB buffers" in estimate
