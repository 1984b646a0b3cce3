"""Exact deduplication: one 128-bit hash of each document's normalized text; equal hashes form a cluster.

`ExactDedup.find_duplicates` runs both passes in one process; the stage runs the same hash as work units
(`dedup/steps.py`). The clustering engine (disk-backed key sorting, union-find, decisions) is `dedup/clusters.py`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dedup.clusters import (  # noqa: F401 - DupDecision and DupResult are part of this module's API
    DupDecision,
    DupResult,
    IdSpill,
    KeySpill,
    UnionFind,
    Workdir,
    build_result,
    format_bytes,
)

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The text exact dedup hashes: NFKC, lowercased, whitespace runs collapsed to one space, stripped.

    NFKC folds compatibility forms (full-width letters, ligatures, non-breaking spaces) so that two copies of
    one text that went through different encoders hash alike; punctuation and digits are kept, so only copies
    that read the same count as exact duplicates.
    """
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


class ExactDedup:
    """Drop documents whose normalized text (`normalize_text`) equals an earlier document's.

    The key is the 128-bit xxh3 hash of the normalized text (collision odds ~N^2 / 2^129: none in practice).

    Args:
        normalize: hash `normalize_text(text)`; False hashes the raw text (byte-identical copies only).
        workdir: where the key file goes (a temporary directory if None); removed when done.
        max_memory_mb: bound on record buffers and sorts; beyond it keys are partitioned on disk.
    """

    name = "exact_dedup"

    def __init__(self, normalize: bool = True, workdir: Path | None = None, max_memory_mb: float = 512) -> None:
        if max_memory_mb <= 0:
            raise ValueError(f"max_memory_mb must be > 0, got {max_memory_mb}")
        self.normalize = normalize
        self.workdir = workdir
        self.max_memory_mb = max_memory_mb

    def memory_estimate(self, num_docs: int) -> str:
        ram = 4 * num_docs + self.max_memory_mb * 2**20
        return (
            f"{self.name}: ~{format_bytes(ram)} RAM (union-find 4 B/doc + {self.max_memory_mb} MiB buffers) "
            f"+ ids of duplicated docs; disk {format_bytes(20 * num_docs)} keys + ids"
        )

    def find_duplicates(self, docs: Iterable[tuple[str, str]]) -> DupResult:
        """Pass 1 over `(doc_id, text)` pairs in stream order; returns the decisions for duplicated docs."""
        import xxhash

        wd = Workdir(self.workdir, "exact")
        try:
            spill = KeySpill(wd.path / "keys.bin", two_keys=True, max_memory_mb=self.max_memory_mb / 2)
            ids = IdSpill(wd.path / "ids.txt")
            batch = 8192
            k, k2, idx = [], [], []
            for pos, (doc_id, text) in enumerate(docs):
                ids.append(doc_id)
                h = xxhash.xxh3_128_intdigest(normalize_text(text) if self.normalize else text)
                k.append(h >> 64)
                k2.append(h & 0xFFFFFFFFFFFFFFFF)
                idx.append(pos)
                if len(k) >= batch:
                    spill.append(np.array(k, np.uint64), np.array(idx, np.uint32), np.array(k2, np.uint64))
                    k, k2, idx = [], [], []
            if k:
                spill.append(np.array(k, np.uint64), np.array(idx, np.uint32), np.array(k2, np.uint64))
            uf = UnionFind(ids.count)
            for u, v in spill.edges():
                uf.union(u, v)
            return build_result(uf.roots(), ids)
        finally:
            wd.close()


def expected_candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """LSH banding: P(two docs with Jaccard s share >= 1 band) = 1 - (1 - s^r)^b (Leskovec et al., MMDS ch. 3)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def lsh_threshold(bands: int, rows: int) -> float:
    """The similarity where the S-curve is steepest, ~(1/b)^(1/r)."""
    return math.pow(1.0 / bands, 1.0 / rows)
