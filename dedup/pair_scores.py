"""Scoring a near-duplicate setting on the labelled pairs of dedup/pairs.py: whether our MinHash (or datatrove's
FineWeb MinHash, for comparison) merges each pair, and precision / recall, overall or per true-Jaccard band.

Why apart from the pairs: tests and benchmarks/bench_neardup.py score many settings on one built pair set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dedup.minhash import MinHashDedup
from dedup.pairs import Pair

JACCARD_BANDS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)  # lower edges; the last band is [0.9, 1.0]


def predict_ours(md: MinHashDedup, pairs: list[Pair]) -> np.ndarray:
    """Whether `md` merges each pair on its own: a shared LSH band key, then (when set) the verification of the
    estimated Jaccard, as `MinHashDedup.find_duplicates` decides one candidate pair."""
    index: dict[str, int] = {}
    for p in pairs:
        index.setdefault(p.a, len(index))
        index.setdefault(p.b, len(index))
    sigs = md.signatures(list(index))
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    return md.pair_matches(sigs[ia], sigs[ib])


def predict_datatrove(pairs: list[Pair], n_grams: int = 5, buckets: int = 14, rows: int = 8) -> np.ndarray:
    """datatrove's FineWeb MinHash on each pair: its own `simplify_text`, English word tokenizer, 64-bit shingle
    hashes and (a x + b) mod 2^61-1 permutations (`MinhashDedupSignature.get_shingles` / `get_signature`); a pair
    is merged when one bucket's signature tuple is equal in both, which is the match `MinhashDedupBuckets` writes
    (its union-find in `MinhashDedupCluster` only joins such matches). A text without 5 words gets no signature
    there and is never merged."""
    import tempfile

    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    with tempfile.TemporaryDirectory() as tmp:
        step = MinhashDedupSignature(tmp, MinhashConfig(n_grams=n_grams, num_buckets=buckets, hashes_per_bucket=rows))
        cache: dict[str, list[tuple[int, ...]] | None] = {}

        def sig(text: str) -> list[tuple[int, ...]] | None:
            if text not in cache:
                sh = step.get_shingles(text)
                cache[text] = [tuple(b) for b in step.get_signature(sh)] if sh.size else None
            return cache[text]

        out = []
        for p in pairs:
            sa, sb = sig(p.a), sig(p.b)
            out.append(sa is not None and sb is not None and any(x == y for x, y in zip(sa, sb)))
    return np.array(out, dtype=bool)


@dataclass(frozen=True)
class Scores:
    """Counts of one setting on a pair set: tp (positives merged), fp (negatives merged), fn, tn."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")


def score(pairs: list[Pair], merged: np.ndarray, keep: Callable[[Pair], bool] = lambda p: True) -> Scores:
    """Scores over the pairs for which `keep` is true."""
    c = [0, 0, 0, 0]
    for p, m in zip(pairs, merged.tolist()):
        if keep(p):
            c[(0 if p.label else 1) if m else (2 if p.label else 3)] += 1
    return Scores(*c)


def band_of(j: float) -> str:
    """Label of the true-Jaccard band of `j` (`JACCARD_BANDS`)."""
    edges = JACCARD_BANDS + (1.0001,)
    for lo, hi in zip(edges, edges[1:]):
        if lo <= j < hi:
            return f"<{hi:.1f}" if lo == 0 else f">={lo:.1f}" if hi > 1 else f"{lo:.1f}-{hi:.1f}"
    raise ValueError(f"Jaccard {j} outside [0, 1]")
