"""Select documents by the mixture and plan fixed-length packed sequences, from a tokenized corpus's document
table (sharding/chunks.py tokenizes, sharding/doc_table.py holds the table).

1. `select_documents`: whole passes over each source plus a seeded sample for the fractional pass.
2. `plan_sequences`: documents (each followed by EOT) concatenated in a seeded shuffled order and cut every
   `seq_len` tokens; with buckets (long-context stage), each bucket is packed on its own and the bucket
   sequences are interleaved to the configured fractions. A trailing partial sequence is dropped.
3. `shard_pieces`: where each document's ids land in a run of sequences, computed with array operations
   (no per-piece Python), for the shard writer and its placements index.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sharding.doc_table import DocTable

log = logging.getLogger(__name__)


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator keyed by the stage seed and names (a source, "order"), stable across runs and platforms."""
    digest = hashlib.sha256("\x00".join(names).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def select_documents(
    docs: DocTable, budgets: dict[str, int], seed: int, copies: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Documents (with repeat index) that realise each source's budget.

    Whole passes over the source in corpus order, then the fractional pass: a seeded permutation of the
    source's documents, taking the longest prefix whose tokens (EOT included) fit in what is left. A source
    with a budget smaller than any of its documents gets one document (the first of its permutation), so a
    source the mixture wants is never rounded to nothing.

    Args:
        copies: per document, its copies in one pass (rehydration; None: one each). Pass r's copy k of a document
            with c copies has repeat index r * c + k, so (document, repeat) stays unique.

    Returns:
        (doc indices, repeat indices, tokens selected per source incl. EOT).
    """
    doc_out, rep_out, realized = [], [], {}
    for code, source in sorted(enumerate(docs.source_names), key=lambda cs: cs[1]):
        idx = np.flatnonzero(docs.source == code).astype(np.int64)
        per_doc = copies[idx] if copies is not None else np.ones(idx.size, np.int64)
        idx = np.repeat(idx, per_doc)  # one pass: each document as many times as its copies
        per_copy = np.repeat(per_doc, per_doc)
        copy_no = np.arange(idx.size) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
        sizes = docs.lengths[idx] + 1
        avail = int(sizes.sum())
        budget = budgets.get(source, 0)
        if budget <= 0 or avail == 0:
            realized[source] = 0
            continue
        full, rest = divmod(budget, avail)
        for r in range(full):
            doc_out.append(idx)
            rep_out.append((r * per_copy + copy_no).astype(np.int32))
        perm = seeded_rng(seed, "sample", source).permutation(idx.size)
        take = int(np.searchsorted(np.cumsum(sizes[perm]), rest, side="right"))
        if full == 0 and take == 0:
            take = 1  # a budget smaller than any document still selects one: a wanted source is never empty
        part = np.sort(perm[:take])  # corpus order inside the pass; the global shuffle comes later
        doc_out.append(idx[part])
        rep_out.append((full * per_copy[part] + copy_no[part]).astype(np.int32))
        realized[source] = full * avail + int(sizes[part].sum())
    if not doc_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), realized
    return np.concatenate(doc_out), np.concatenate(rep_out), realized


@dataclass(frozen=True)
class Bucket:
    """Documents whose token count (EOT included) is in [min_tokens, max_tokens], a `fraction` of sequences."""

    name: str
    min_tokens: int = 0
    max_tokens: int | None = None
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < self.min_tokens:
            raise ValueError(f"bucket {self.name!r}: max_tokens {self.max_tokens} < min_tokens {self.min_tokens}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"bucket {self.name!r}: fraction {self.fraction} must be in (0, 1]")


@dataclass
class Stream:
    """One bucket's packed stream: documents in order, each followed by EOT, cut every seq_len tokens."""

    bucket: str
    docs: np.ndarray  # int64 doc indices
    repeats: np.ndarray  # int32
    ends: np.ndarray  # int64, cumulative end of each document's slot (ids + EOT) in the stream
    num_sequences: int


@dataclass
class SequencePlan:
    streams: list[Stream]
    order: np.ndarray  # (num_sequences, 2) int64: (stream index, sequence index within the stream)
    stats: dict[str, Any]


def plan_sequences(
    docs: DocTable, doc_idx: np.ndarray, repeats: np.ndarray, seq_len: int, buckets: list[Bucket], seed: int
) -> SequencePlan:
    """Shuffle the selected documents (seeded), split them into buckets, pack each, interleave.

    With several buckets, N sequences are kept such that bucket b contributes floor(N * fraction_b) and
    none needs more sequences than it has (Qwen3's long-context stage: 75% from 16K-32K-token documents,
    25% from 4K-16K; arXiv 2505.09388, sec. 3.1).
    """
    perm = seeded_rng(seed, "order").permutation(doc_idx.size)
    doc_idx, repeats = doc_idx[perm], repeats[perm]
    sizes = docs.lengths[doc_idx] + 1
    assigned = np.full(doc_idx.size, -1, dtype=np.int64)
    for b, bucket in reversed(list(enumerate(buckets))):  # first matching bucket wins
        hi = bucket.max_tokens if bucket.max_tokens is not None else np.iinfo(np.int64).max
        assigned[(sizes >= bucket.min_tokens) & (sizes <= hi)] = b
    streams = []
    for b, bucket in enumerate(buckets):
        m = assigned == b
        ends = np.cumsum(sizes[m])
        streams.append(Stream(bucket.name, doc_idx[m], repeats[m], ends, int(ends[-1] // seq_len) if ends.size else 0))
    outside = ~np.isin(assigned, np.arange(len(buckets)))
    if len(buckets) == 1:
        counts = [streams[0].num_sequences]
    else:
        # A bucket with no document (a books-only long_context run has none of 4K-16K tokens) does not veto the
        # others: the mix is kept among the buckets that have sequences, and the empty one is reported.
        filled = [(s, bk) for s, bk in zip(streams, buckets) if s.num_sequences > 0]
        total = min((int(s.num_sequences / bk.fraction) for s, bk in filled), default=0)
        counts = [min(s.num_sequences, int(total * bk.fraction)) for s, bk in zip(streams, buckets)]
        for s, bk in zip(streams, buckets):
            if s.num_sequences == 0 and total:
                log.warning(
                    "length bucket %s has no full sequence (%d documents): the other buckets fill the stage",
                    bk.name,
                    s.docs.size,
                )
    labels = np.concatenate([np.full(n, b, dtype=np.int64) for b, n in enumerate(counts)]) if counts else np.zeros(0)
    if len(buckets) > 1:
        labels = labels[seeded_rng(seed, "buckets").permutation(labels.size)]
    within = np.zeros(labels.size, dtype=np.int64)
    for b in range(len(buckets)):
        where = labels == b
        within[where] = np.arange(int(where.sum()))
    order = np.stack([labels, within], axis=1) if labels.size else np.zeros((0, 2), dtype=np.int64)
    selected_tokens = int(sizes.sum())
    packed = int(labels.size) * seq_len
    stats = {
        "docs_selected": int(doc_idx.size),
        "tokens_selected": selected_tokens,
        "docs_outside_buckets": int(outside.sum()),
        "tokens_outside_buckets": int(sizes[outside].sum()),
        "num_sequences": int(labels.size),
        "tokens_packed": packed,
        "tokens_dropped": selected_tokens - int(sizes[outside].sum()) - packed,  # partial tails, bucket surplus
        "buckets": {
            bk.name: {
                "docs": int(s.docs.size),
                "sequences_available": s.num_sequences,
                "sequences": n,
                "fraction": (n / labels.size) if labels.size else 0.0,
            }
            for s, bk, n in zip(streams, buckets, counts)
        },
    }
    return SequencePlan(streams, order, stats)


@dataclass
class Pieces:
    """The pieces of a run of sequences, in shard order: a piece is one document's ids inside one sequence,
    plus its EOT when the document ends there. Arrays are parallel, one entry per piece."""

    sequence: np.ndarray  # int64, global sequence index
    stream: np.ndarray  # int64, index into plan.streams
    doc: np.ndarray  # int64, document index in the DocTable
    repeat: np.ndarray  # int32
    doc_start: np.ndarray  # int64, first id's position inside the document
    num_ids: np.ndarray  # int64, ids in the piece (0: only its EOT falls in this sequence)
    eot: np.ndarray  # bool, the document's EOT follows the piece's ids
    offset: np.ndarray  # int64, first id's position counted from sequence `first`'s start


def shard_pieces(plan: SequencePlan, first: int, stop: int, seq_len: int) -> Pieces:
    """Every piece of sequences [first, stop), vectorised: for each sequence, the slots (document + EOT) it
    overlaps come from two binary searches on the stream's cumulative slot ends."""
    parts = []
    seqs = np.arange(first, stop, dtype=np.int64)
    for b, stream in enumerate(plan.streams):
        k = seqs[plan.order[first:stop, 0] == b]
        if k.size == 0:
            continue
        a = plan.order[k, 1] * seq_len  # the sequence's span [a, a + seq_len) in the stream
        lo = np.searchsorted(stream.ends, a, side="right")  # slot holding position a
        hi = np.searchsorted(stream.ends, a + seq_len - 1, side="right")  # slot holding the last position
        count = hi - lo + 1
        seq_of = np.repeat(np.arange(k.size), count)
        slot = lo[seq_of] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        slot_end = stream.ends[slot]
        slot_start = np.where(slot > 0, stream.ends[np.maximum(slot - 1, 0)], 0)
        lo_pos = np.maximum(a[seq_of], slot_start)
        stop_in_slot = np.minimum(a[seq_of] + seq_len, slot_end) - slot_start
        size = slot_end - slot_start
        doc_start = lo_pos - slot_start
        parts.append(
            (
                k[seq_of],
                np.full(slot.size, b, dtype=np.int64),
                stream.docs[slot],
                stream.repeats[slot],
                doc_start,
                np.minimum(stop_in_slot, size - 1) - doc_start,
                stop_in_slot == size,
                (k[seq_of] - first) * seq_len + lo_pos - a[seq_of],
            )
        )
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return Pieces(z, z, z, z.astype(np.int32), z, z, z.astype(bool), z)
    cols = [np.concatenate(c) for c in zip(*parts)]
    order = np.argsort(cols[-1], kind="stable")  # offsets are distinct: every piece holds an id or an EOT
    return Pieces(*(c[order] for c in cols))
