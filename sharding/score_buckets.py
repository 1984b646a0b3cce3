"""Score buckets in the mixture (Nemotron-CC, Su et al. 2024, arXiv 2412.02595, section 2: documents bucketed by an
ensemble of quality classifiers, each bucket with its own weight and number of repetitions).

    [mixture.score_buckets]
    scorer = "educational_value"      # a [scorers.<name>] of the stage: the `scores` key the buckets read
    [mixture.score_buckets.buckets.high]
    min_score = 0.7                   # a document is in the bucket with the highest min_score <= its score
    share = 0.6                       # the bucket's share of its domain's scored tokens
    max_repeats = 4.0                 # optional: passes over the bucket (default: the source's cap)
    [mixture.score_buckets.buckets.low]
    min_score = 0.0                   # the lowest bucket starts at 0, so every scored document has one
    share = 0.4
    max_repeats = 1.0

Planning (sharding/mixture.py, `plan_budget`): each domain's share of the stage is split first between its
unscored documents (their natural share: their fraction of the domain's tokens) and its scored ones, whose part is
split across the buckets present in the domain by `share` (normalised over those); within a bucket, sources share
as they share a domain (weight x available). Each (source, bucket) cell is capped at `max_repeats` passes (the
bucket's when it has one, never above the source's own `[mixture.sources.X] max_repeats`), and what a capped cell
cannot take goes to the others. Selection realises each cell's budget as a source's (`select_documents`), named
`source#bucket`, so a mixture without buckets selects exactly the documents it selected before.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.config_types import check_table
from sharding.chunks import Chunk
from sharding.doc_table import DocTable, available_by_source

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_BUCKET_KEYS = {"min_score": float, "share": float, "max_repeats": float}


@dataclass(frozen=True)
class ScoreBucket:
    """One bucket: documents scoring in [min_score, the next bucket's min_score)."""

    name: str
    min_score: float
    share: float
    max_repeats: float | None = None


@dataclass(frozen=True)
class ScoreBuckets:
    """`[mixture.score_buckets]`, validated (see the module docstring); buckets in ascending min_score."""

    scorer: str
    buckets: tuple[ScoreBucket, ...]

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> ScoreBuckets:
        """Check the table: a scorer name, at least one bucket, scores in [0, 1] starting at 0, shares >= 0.

        Raises:
            ValueError: the message names the key and the value.
        """
        where = "[mixture.score_buckets]"
        check_table(where, table, {"scorer": str, "buckets": dict[str, dict[str, float]]})
        if "scorer" not in table or not table.get("buckets"):
            raise ValueError(f"{where} needs scorer (a [scorers.<name>] of the stage) and [{where[1:-1]}.buckets.*]")
        buckets = []
        for name, b in table["buckets"].items():
            w = f"[mixture.score_buckets.buckets.{name}]"
            if not _NAME_RE.match(name):
                raise ValueError(f"{w}: a bucket name is lower-case letters, digits and _")
            check_table(w, b, _BUCKET_KEYS)
            if "min_score" not in b or "share" not in b:
                raise ValueError(f"{w}: min_score and share are required")
            if not 0.0 <= b["min_score"] <= 1.0:
                raise ValueError(f"{w} min_score = {b['min_score']!r}: a score is in [0, 1]")
            for key in ("share", "max_repeats"):
                if b.get(key, 0.0) < 0:
                    raise ValueError(f"{w} {key} = {b[key]!r}: must be >= 0")
            buckets.append(ScoreBucket(name, float(b["min_score"]), float(b["share"]), b.get("max_repeats")))
        buckets.sort(key=lambda b: b.min_score)
        if buckets[0].min_score != 0.0:
            raise ValueError(
                f"{where}: the lowest bucket's min_score must be 0, so that every scored document has one"
            )
        if len({b.min_score for b in buckets}) != len(buckets):
            raise ValueError(f"{where}: two buckets have the same min_score")
        return cls(table["scorer"], tuple(buckets))

    def bucket(self, name: str | None) -> ScoreBucket | None:
        return next((b for b in self.buckets if b.name == name), None)

    def assign(self, scores: np.ndarray) -> np.ndarray:
        """The bucket index of each score (int64; -1 for NaN, a document without the score)."""
        edges = np.array([b.min_score for b in self.buckets[1:]], np.float64)
        out = np.searchsorted(edges, np.nan_to_num(scores, nan=0.0), side="right").astype(np.int64)
        out[np.isnan(scores)] = -1
        return out


def cell_name(source: str, bucket: str | None) -> str:
    """A (source, bucket) cell as the selection names it: the source itself for its unscored documents."""
    return source if bucket is None else f"{source}#{bucket}"


def read_scores(chunks: list[Chunk], scorer: str) -> np.ndarray:
    """`scores[scorer]` of every document of `chunks`, in corpus order (float64, NaN where absent)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = []
    for c in chunks:
        pf = pq.ParquetFile(c.path)
        if "scores" not in pf.schema_arrow.names:  # a corpus from before the column: nothing is scored
            parts.append(np.full(pf.metadata.row_group(c.row_group).num_rows, np.nan))
            continue
        column = pf.read_row_group(c.row_group, columns=["scores"]).column(0)
        values = pc.map_lookup(column, scorer, "first")
        parts.append(values.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.concatenate(parts) if parts else np.zeros(0, np.float64)


@dataclass(frozen=True)
class Cells:
    """The documents as the selection sees them: `table` is the DocTable with each document's source replaced by
    its (source, bucket) cell, `cells` maps a cell name to its (source, bucket)."""

    table: DocTable
    cells: dict[str, tuple[str, str | None]]

    def available(self, copies: np.ndarray | None) -> dict[tuple[str, str, str | None], tuple[int, int]]:
        """(domain, source, bucket) -> (documents, tokens incl. EOT), as `plan_budget` reads it."""
        by_cell = available_by_source(self.table, copies)
        return {(domain, *self.cells[cell]): counts for (domain, cell), counts in by_cell.items()}


def bucket_cells(docs: DocTable, chunks: list[Chunk], buckets: ScoreBuckets | None) -> Cells:
    """Each document's cell: its source alone without buckets (the table unchanged), else source and bucket."""
    if buckets is None:
        return Cells(docs, {name: (name, None) for name in docs.source_names})
    index = buckets.assign(read_scores(chunks, buckets.scorer))
    names = [None, *(b.name for b in buckets.buckets)]  # index + 1: -1 (no score) is None
    n_buckets = len(names)
    combined = docs.source.astype(np.int64) * n_buckets + (index + 1)
    keys, codes = np.unique(combined, return_inverse=True)
    cells = {}
    for k in keys.tolist():
        source, bucket = docs.source_names[k // n_buckets], names[k % n_buckets]
        cells[cell_name(source, bucket)] = (source, bucket)
    table = dataclasses.replace(docs, source=codes.astype(np.int32), source_names=list(cells))
    return Cells(table, cells)
