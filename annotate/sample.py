"""A seeded, stratified sample of a finished corpus: the documents an annotator labels.

    docs = stratified_sample("runs/general", count=600, seed=0)   # list[synth.seeds.Seed]

Strata are (domain, language, source). Inside a stratum documents are in the seeded hash order of synth/seeds.py
(sha256 of seed and id); the sample takes them round by round, one per stratum per round (the strata of a round in
the hash order of the document each offers), until `count`. So every stratum is represented as equally as its size
allows (a rare language gets as many labels as English, until it runs out), and the sample depends only on the seed
and the set of documents: not on file order, and a larger count extends a smaller one.

Two passes over the corpus: the first reads ids and strata only, keeping at most `count` keys per stratum; the
second reads the text of the chosen documents.
"""

from __future__ import annotations

import heapq
from pathlib import Path

from synth.seeds import Seed, corpus_dir, sample_key

STRATA = ("domain", "lang", "source")


def stratified_sample(run: Path | str, count: int, seed: int = 0, batch_rows: int = 4096) -> list[Seed]:
    """Up to `count` documents of the run's corpus, stratified by (domain, lang, source), in sample order.

    Args:
        run: a run folder (its `corpus/docs`), a corpus folder or a folder of DOCUMENT_SCHEMA Parquet.
        count: how many documents (fewer when the corpus holds fewer).
        seed: the sampling seed.
        batch_rows: rows read per batch.
    """
    import pyarrow.dataset as ds

    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    root = corpus_dir(run)
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    missing = {"id", "text", "domain"} - set(dataset.schema.names)
    if missing:
        raise ValueError(f"{root}: not a corpus of DOCUMENT_SCHEMA (missing columns {sorted(missing)})")
    columns = [c for c in ("id", *STRATA) if c in dataset.schema.names]
    # Per stratum, the `count` smallest keys (inverted on a max-heap): no stratum gives more than `count`.
    heaps: dict[tuple[str, str, str], list[tuple[bytes, str]]] = {}
    seen: set[str] = set()
    for batch in dataset.to_batches(columns=columns, batch_size=batch_rows):
        rows = batch.to_pydict()
        for i, doc_id in enumerate(rows["id"]):
            if doc_id in seen:  # the same document twice: sampled once
                continue
            seen.add(doc_id)
            stratum = tuple(str(rows[c][i]) if c in rows and rows[c][i] is not None else "" for c in STRATA)
            heap = heaps.setdefault(stratum, [])
            inv = bytes(255 - b for b in sample_key(seed, doc_id))
            if len(heap) < count:
                heapq.heappush(heap, (inv, doc_id))
            elif count and inv > heap[0][0]:
                heapq.heapreplace(heap, (inv, doc_id))
    chosen = _round_robin({s: sorted(sample_key(seed, d) + d.encode() for _, d in h) for s, h in heaps.items()}, count)
    return _read_documents(dataset, chosen)


def read_seeds(run: Path | str, ids: list[str]) -> list[Seed]:
    """The documents of `run`'s corpus with these ids, with their text, in the order of `ids` (e.g. those an
    annotations table labelled).

    Raises:
        KeyError: an id the corpus does not hold.
    """
    import pyarrow.dataset as ds

    return _read_documents(ds.dataset(corpus_dir(run), format="parquet", partitioning="hive"), ids)


def _round_robin(strata: dict[tuple[str, str, str], list[bytes]], count: int) -> list[str]:
    """Document ids, one per stratum per round until `count`; inside a round, by the key of what each offers.

    Args:
        strata: per stratum, its documents as sorted `key + id` bytes (the key is sha256: 32 bytes).
    """
    out: list[str] = []
    rounds = max((len(v) for v in strata.values()), default=0)
    for r in range(rounds):
        offered = sorted(docs[r] for docs in strata.values() if r < len(docs))
        for item in offered[: count - len(out)]:
            out.append(item[32:].decode())
        if len(out) >= count:
            break
    return out


def _read_documents(dataset, ids: list[str]) -> list[Seed]:
    """The chosen documents with their text, in the order of `ids`."""
    import pyarrow.compute as pc

    if not ids:
        return []
    columns = [c for c in ("id", "text", *STRATA) if c in dataset.schema.names]
    rows = dataset.to_table(columns=columns, filter=pc.field("id").isin(ids)).to_pylist()
    by_id: dict[str, Seed] = {}
    for row in rows:
        by_id.setdefault(
            row["id"],
            Seed(
                id=row["id"],
                text=row["text"],
                domain=str(row["domain"]),
                lang=row.get("lang"),
                source=str(row.get("source") or ""),
            ),
        )
    return [by_id[i] for i in ids]
