"""Tokenize a corpus once into resumable chunks, select documents by the mixture, and plan fixed-length
packed sequences.

1. `tokenize_chunk`: one chunk per (Parquet file, row group), in sorted path order; the stage runs each as a
   work unit (`sharding.steps.TokenizeStep`). A chunk is two files, `<key>.tok` (uint32 ids of its documents,
   back to back, no EOT) and `<key>.len.npy` (ids per document). The key hashes the file's bytes, the row
   group and the tokenizer, so a changed input or tokenizer never reuses a stale chunk. The work inside a
   chunk is cut into ~1 MB row ranges for the encoding threads, so large row groups still use every core.
2. `select_documents`: whole passes over each source plus a seeded sample for the fractional pass.
3. `plan_sequences`: documents (each followed by EOT) concatenated in a seeded shuffled order and cut every
   `seq_len` tokens; with buckets (long-context stage), each bucket is packed on its own and the bucket
   sequences are interleaved to the configured fractions. A trailing partial sequence is dropped.
4. `shard_pieces`: where each document's ids land in a run of sequences, computed with array operations
   (no per-piece Python), for the shard writer and its placements index.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from core.io import file_sha256

log = logging.getLogger(__name__)

TOKENIZE_VERSION = 1  # bump when the way a document becomes ids changes


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator keyed by the stage seed and names (a source, "order"), stable across runs and platforms."""
    digest = hashlib.sha256("\x00".join(names).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


@dataclass(frozen=True)
class Chunk:
    """One (Parquet file, row group) of the corpus."""

    path: Path
    row_group: int
    num_docs: int
    key: str


def list_chunks(corpus_docs_dir: Path, tokenizer_id: str) -> tuple[list[Chunk], str]:
    """The corpus's chunks in sorted path order, and the corpus fingerprint (names and bytes of its files).

    Args:
        tokenizer_id: name and vocabulary hash; part of every chunk key.
    """
    import pyarrow.parquet as pq

    paths = sorted(corpus_docs_dir.rglob("*.parquet"))
    corpus = hashlib.sha256()
    chunks = []
    for path in paths:
        digest = file_sha256(path)
        corpus.update(f"{path.relative_to(corpus_docs_dir)}\x00{digest}\x00".encode())
        meta = pq.ParquetFile(path).metadata
        for rg in range(meta.num_row_groups):
            key = hashlib.sha256(f"{digest}|{rg}|{tokenizer_id}|v{TOKENIZE_VERSION}".encode()).hexdigest()[:32]
            chunks.append(Chunk(path, rg, meta.row_group(rg).num_rows, key))
    return chunks, corpus.hexdigest()


WORK_BYTES = 1 << 20  # text per encoder task: the last task of a chunk ends within ~60 ms of the others
MIN_WORK_BYTES = 64 << 10  # a small chunk is still cut for every thread, but not into slivers
_POOLS: dict[int, ThreadPoolExecutor] = {}


def encoder_pool(num_proc: int) -> ThreadPoolExecutor:
    """This process's `num_proc` encoder threads, kept for the process's life.

    NOTE: each encoder thread builds its own tiktoken CoreBPE on first use (~0.1 s for o200k, see
    `Tokenizer._thread_core`); a pool per chunk would pay that for every chunk and thread.
    """
    pool = _POOLS.get(num_proc)
    if pool is None:
        pool = _POOLS[num_proc] = ThreadPoolExecutor(num_proc, thread_name_prefix="tokenize")
    return pool


def _read_text(chunk: Chunk, batch_bytes: int | None = None) -> Iterator[Any]:
    """The chunk's text column as arrays of about `batch_bytes` (from the Parquet footer's size; None:
    the whole row group), streamed so that encoding starts before a large row group is decoded."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(chunk.path)
    rg = pf.metadata.row_group(chunk.row_group)
    rows = max(1, rg.num_rows)
    if batch_bytes is not None:
        size = next(
            (
                rg.column(i).total_uncompressed_size
                for i in range(rg.num_columns)
                if rg.column(i).path_in_schema == "text"
            ),
            0,
        )
        rows = max(1, min(rows, rows * batch_bytes // max(1, size)))
    for batch in pf.iter_batches(batch_size=rows, row_groups=[chunk.row_group], columns=["text"]):
        yield batch.column(0)


def _text_lengths(column: Any) -> np.ndarray:
    """UTF-8 bytes per row of a (large_)string array, from its offsets buffer (no pyarrow.compute import)."""
    import pyarrow as pa

    if len(column) == 0:
        return np.zeros(0, dtype=np.int64)
    wide = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64 if wide else np.int32)
    return np.diff(offsets[column.offset : column.offset + len(column) + 1]).astype(np.int64)


def _row_ranges(column: Any, target_bytes: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of roughly `target_bytes` UTF-8 bytes each (a document is never split)."""
    n = len(column)
    if n == 0:
        return []
    ends = np.cumsum(_text_lengths(column))
    k = int(min(n, max(1, -(-int(ends[-1]) // target_bytes))))
    cuts = np.searchsorted(ends, ends[-1] * np.arange(1, k) / k, side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [n]])).tolist()
    return list(pairwise(bounds))


def _encode_rows(tok: Any, column: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    return tok.encode_batch_np(column.slice(start, stop - start).to_pylist())


def _write_chunk(prefix: Path, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """`<prefix>.tok` then `<prefix>.len.npy`, each atomically; the lengths last mark the chunk complete."""
    tok_path, len_path = Path(f"{prefix}.tok"), Path(f"{prefix}.len.npy")
    tmp = tok_path.with_name(f".{tok_path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.writelines(ids.data for ids, _ in parts)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, tok_path)
    lengths = np.concatenate([n for _, n in parts]) if parts else np.zeros(0, np.int64)
    tmp = len_path.with_name(f".{prefix.name}.len.tmp-{os.getpid()}.npy")
    np.save(tmp, lengths)
    os.replace(tmp, len_path)
    return lengths.size, int(lengths.sum())


def _chunk_complete(prefix: Path) -> bool:
    """Its lengths file exists and its token file holds exactly that many ids (a cut file is redone)."""
    len_path, tok_path = Path(f"{prefix}.len.npy"), Path(f"{prefix}.tok")
    if not len_path.is_file() or not tok_path.is_file():
        return False
    try:
        return tok_path.stat().st_size == 4 * int(np.load(len_path).sum())
    except (OSError, ValueError):  # an unreadable lengths file: redo the chunk
        return False


def tokenize_chunk(chunk: Chunk, tok: Any, prefix: Path, num_proc: int = 1) -> dict[str, int]:
    """Encode one chunk into `<prefix>.tok` and `<prefix>.len.npy` (lengths last: they mark it complete).

    The chunk's rows are cut into ranges of ~`WORK_BYTES` of text that `num_proc` threads encode (tiktoken
    releases the GIL) while this thread reads the next batch; ranges are written in row order, so the files
    do not depend on `num_proc` or on how the rows were split.

    Args:
        chunk: from `list_chunks`.
        tok: a loaded tokenizer (`sharding.tokenizer.load_tokenizer`).
        prefix: output path without suffix (the chunk's key in a token cache, or in a work unit's folder).
        num_proc: encoding threads.

    Returns:
        counts: docs, tokens, bytes (UTF-8 text of the chunk).
    """
    pool = encoder_pool(num_proc)
    parts: list[Future] = []
    nbytes = 0
    try:
        for column in _read_text(chunk, 2 * WORK_BYTES):
            size = int(_text_lengths(column).sum())
            nbytes += size
            # Units run one after another in a process: a chunk of a few MB must still keep every thread busy.
            target = max(MIN_WORK_BYTES, min(WORK_BYTES, size // (2 * num_proc))) if num_proc > 1 else WORK_BYTES
            parts.extend(pool.submit(_encode_rows, tok, column, a, b) for a, b in _row_ranges(column, target))
        docs, tokens = _write_chunk(prefix, [f.result() for f in parts])
    except BaseException:
        for f in parts:  # a kill must not leave encoders working on a dead chunk
            f.cancel()
        wait(parts)
        raise
    return {"docs": docs, "tokens": tokens, "bytes": nbytes}


def tokenize_corpus(chunks: list[Chunk], tok_name: str, work_dir: Path, num_proc: int = 1) -> dict[str, int]:
    """Tokenize every chunk not already complete in the token cache `work_dir` (`<key>.tok`, `<key>.len.npy`).

    The stage runs chunks as work units instead (`sharding.steps.TokenizeStep`); this loop serves tools and
    tests that want a plain cache folder.

    Returns:
        counts: chunks, chunks_tokenized, docs, tokens, bytes (of the tokenized chunks).
    """
    from sharding.tokenizer import load_tokenizer

    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".*.tmp-*"):  # a killed run's partial files never become chunks
        stale.unlink(missing_ok=True)
    todo = [c for c in chunks if not _chunk_complete(work_dir / c.key)]
    stats = {"chunks": len(chunks), "chunks_tokenized": len(todo), "docs": 0, "tokens": 0, "bytes": 0}
    tok = load_tokenizer(tok_name) if todo else None
    for chunk in todo:
        for k, v in tokenize_chunk(chunk, tok, work_dir / chunk.key, num_proc).items():
            stats[k] += v
    return stats


@dataclass
class DocTable:
    """Every corpus document in corpus order: id, source, domain, token count and where its ids are."""

    ids: Any  # pyarrow string array
    source: np.ndarray  # int32, index into source_names
    domain: np.ndarray  # int32, index into domain_names
    source_names: list[str]
    domain_names: list[str]
    lengths: np.ndarray  # int64, ids per document (no EOT)
    chunk: np.ndarray  # int32, index into chunk_files
    offset: np.ndarray  # int64, first id's position in its chunk file
    chunk_files: list[Path] = field(default_factory=list)

    def gather(self, out: np.ndarray, doc: np.ndarray, start: np.ndarray, num: np.ndarray, dst: np.ndarray) -> None:
        """`out[dst[i]:dst[i] + num[i]] = ids of doc[i] from position start[i]`, one chunk file open at a time."""
        chunk = self.chunk[doc]
        src = self.offset[doc] + start
        order = np.lexsort((src, chunk))  # each file read front to back
        bounds = np.flatnonzero(np.diff(chunk[order])) + 1
        for sel in np.split(order, bounds) if order.size else []:
            ids = np.asarray(np.memmap(self.chunk_files[int(chunk[sel[0]])], dtype=np.uint32, mode="r"))
            for s, d, n in zip(src[sel].tolist(), dst[sel].tolist(), num[sel].tolist()):
                out[d : d + n] = ids[s : s + n]
            del ids


def read_doc_meta(chunks: list[Chunk]) -> list[Any]:
    """The id, source and domain columns of every chunk (a Table each), in corpus order."""
    import pyarrow.parquet as pq

    return [pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["id", "source", "domain"]) for c in chunks]


def read_cluster_sizes(chunks: list[Chunk]) -> np.ndarray:
    """`metadata.dup_cluster_size` of every document of `chunks` (1 where absent), in corpus order (int64).

    Only the rows whose metadata names the key are parsed (dedup survivors; most documents are unique).
    """
    import json

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from schemas import DUP_CLUSTER_SIZE

    parts = []
    for c in chunks:
        column = pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["metadata"]).column(0)
        sizes = np.ones(len(column), np.int64)
        marked = pc.fill_null(pc.match_substring(column, f'"{DUP_CLUSTER_SIZE}"'), False)
        rows = np.flatnonzero(marked.to_numpy(zero_copy_only=False))
        for row, meta in zip(rows.tolist(), column.take(pa.array(rows, pa.int64())).to_pylist()):
            value = json.loads(meta).get(DUP_CLUSTER_SIZE)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                sizes[row] = value
        parts.append(sizes)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def load_doc_table(chunks: list[Chunk], prefixes: list[Path], meta: list[Any] | None = None) -> DocTable:
    """Every document of the tokenized `chunks`: ids from Parquet (or `meta`, from `read_doc_meta`), token
    counts and positions from each chunk's `<prefix>.len.npy` and `<prefix>.tok`."""
    import pyarrow as pa

    ids, sources, domains = [], [], []
    lengths, chunk_idx, files = [], [], []
    metas = meta if meta is not None else read_doc_meta(chunks)
    for i, (c, prefix, t) in enumerate(zip(chunks, prefixes, metas, strict=True)):
        n = np.load(f"{prefix}.len.npy")
        if n.size != t.num_rows:
            raise RuntimeError(
                f"chunk {c.key} of {c.path} has {n.size} lengths for {t.num_rows} rows; delete {prefix.parent}"
            )
        tok_file = Path(f"{prefix}.tok")
        if tok_file.stat().st_size != 4 * int(n.sum()):
            raise RuntimeError(
                f"chunk {c.key}: {tok_file} holds {tok_file.stat().st_size} bytes, lengths say "
                f"{4 * int(n.sum())}; delete {prefix.parent}"
            )
        ids += t.column("id").chunks
        sources += t.column("source").chunks
        domains += t.column("domain").chunks
        lengths.append(n.astype(np.int64))
        chunk_idx.append(np.full(n.size, i, dtype=np.int32))
        files.append(tok_file)

    def codes(arrays: list) -> tuple[np.ndarray, list[str]]:
        enc = pa.chunked_array(arrays, pa.string()).combine_chunks().dictionary_encode()
        return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary.to_pylist()

    src, src_names = codes(sources)
    dom, dom_names = codes(domains)
    n_all = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    chunk_all = np.concatenate(chunk_idx) if chunk_idx else np.zeros(0, np.int32)
    # Offset of each document in its chunk file: global cumsum minus the chunk's first document's.
    ends = np.cumsum(n_all)
    first = np.searchsorted(chunk_all, np.arange(len(chunks)), side="left")
    base = np.concatenate([[0], ends])[first]
    offset = (ends - n_all - base[chunk_all]).astype(np.int64) if n_all.size else np.zeros(0, np.int64)
    return DocTable(
        pa.chunked_array(ids, pa.string()).combine_chunks(),
        src,
        dom,
        src_names,
        dom_names,
        n_all,
        chunk_all,
        offset,
        files,
    )


def available_by_source(docs: DocTable, copies: np.ndarray | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """(domain, source) -> (documents, tokens incl. one EOT each, each document `copies` times when given: the
    mixture's rehydration)."""
    n_src = max(1, len(docs.source_names))
    keys, inverse = np.unique(docs.domain.astype(np.int64) * n_src + docs.source, return_inverse=True)
    counts = np.bincount(inverse, minlength=keys.size)
    tokens = np.zeros(keys.size, dtype=np.int64)
    np.add.at(tokens, inverse, (docs.lengths + 1) * (copies if copies is not None else 1))
    return {
        (docs.domain_names[k // n_src], docs.source_names[k % n_src]): (int(c), int(t))
        for k, c, t in zip(keys.tolist(), counts.tolist(), tokens.tolist())
    }


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
