"""Tokenize a corpus once into resumable chunks, select documents by the mixture, and plan fixed-length
packed sequences.

1. `tokenize_corpus`: one chunk per (Parquet file, row group), in sorted path order. A chunk is two files,
   `<key>.tok` (uint32 ids of its documents, back to back, no EOT) and `<key>.len.npy` (ids per
   document), each written to a temporary name and renamed, the lengths last: a chunk whose `.len.npy`
   exists is complete, and a rerun skips it. The key hashes the file's bytes, the row group and the
   tokenizer, so a changed input or tokenizer never reuses a stale chunk.
2. `select_documents`: whole passes over each source plus a seeded sample for the fractional pass.
3. `plan_sequences`: documents (each followed by EOT) concatenated in a seeded shuffled order and cut every
   `seq_len` tokens; with buckets (long-context stage), each bucket is packed on its own and the bucket
   sequences are interleaved to the configured fractions. A trailing partial sequence is dropped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

TOKENIZE_VERSION = 1  # bump when the way a document becomes ids changes


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _atomic_stream(path: Path, arrays: Iterator[np.ndarray]) -> int:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    with open(tmp, "wb") as f:
        for a in arrays:
            f.write(a.data)
            n += a.size
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


def tokenize_chunk(task: tuple[str, int, str, str]) -> tuple[int, int, int]:
    """Tokenize one chunk into `<work>/<key>.tok` and `<key>.len.npy` (a worker-process entry point).

    Args:
        task: (parquet path, row group, tokenizer name, output prefix).

    Returns:
        (documents, tokens, UTF-8 bytes of text).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sharding.tokenizer import load_tokenizer

    path, rg, tok_name, prefix = task
    tok = load_tokenizer(tok_name)
    column = pq.ParquetFile(path).read_row_group(rg, columns=["text"]).column("text")
    nbytes = int(pc.sum(pc.binary_length(column)).as_py() or 0)
    texts = column.to_pylist()
    lengths = np.empty(len(texts), dtype=np.int64)
    encode = tok.encode_np

    def arrays() -> Iterator[np.ndarray]:
        for i, text in enumerate(texts):
            ids = encode(text)
            lengths[i] = ids.size
            yield ids

    ntok = _atomic_stream(Path(prefix + ".tok"), arrays())
    tmp = Path(f"{prefix}.len.tmp-{os.getpid()}.npy")
    np.save(tmp, lengths)
    os.replace(tmp, prefix + ".len.npy")  # last: its presence marks the chunk complete
    return len(texts), ntok, nbytes


def tokenize_corpus(chunks: list[Chunk], tok_name: str, work_dir: Path, num_proc: int = 1) -> dict[str, int]:
    """Tokenize every chunk not already complete in `work_dir` (resumes at chunk granularity)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".*.tmp-*"):  # a killed run's partial files never become chunks
        stale.unlink(missing_ok=True)
    todo = [(str(c.path), c.row_group, tok_name, str(work_dir / c.key)) for c in chunks
            if not (work_dir / f"{c.key}.len.npy").is_file()]  # fmt: skip
    stats = {"chunks": len(chunks), "chunks_tokenized": len(todo), "docs": 0, "tokens": 0, "bytes": 0}
    if num_proc > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the parent may hold threads (pyarrow, Prefect) that fork would copy mid-lock.
        with ProcessPoolExecutor(min(num_proc, len(todo)), mp_context=multiprocessing.get_context("spawn")) as ex:
            results = list(ex.map(tokenize_chunk, todo))
    else:
        results = [tokenize_chunk(t) for t in todo]
    for d, t, b in results:
        stats["docs"] += d
        stats["tokens"] += t
        stats["bytes"] += b
    return stats


@dataclass
class DocTable:
    """Every corpus document in corpus order: id, source, domain, token count and where its ids are."""

    ids: list[str]
    sources: list[str]  # per document
    domains: list[str]
    lengths: np.ndarray  # int64, ids per document (no EOT)
    chunk: np.ndarray  # int32, index into chunk_files
    offset: np.ndarray  # int64, first id's position in its chunk file
    chunk_files: list[Path] = field(default_factory=list)

    def tokens(self, doc: int, start: int, stop: int) -> np.ndarray:
        mm = _open_tokens(str(self.chunk_files[self.chunk[doc]]))
        base = int(self.offset[doc])
        return mm[base + start : base + stop]


@lru_cache(maxsize=64)  # bounded: one open map per chunk would exhaust file descriptors on big corpora
def _open_tokens(path: str) -> np.ndarray:
    if os.path.getsize(path) == 0:
        return np.zeros(0, dtype=np.uint32)
    return np.memmap(path, dtype=np.uint32, mode="r")


def load_doc_table(chunks: list[Chunk], work_dir: Path) -> DocTable:
    import pyarrow.parquet as pq

    _open_tokens.cache_clear()
    ids: list[str] = []
    sources: list[str] = []
    domains: list[str] = []
    lengths, chunk_idx, offsets, files = [], [], [], []
    for i, c in enumerate(chunks):
        t = pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["id", "source", "domain"])
        ids += t.column("id").to_pylist()
        sources += t.column("source").to_pylist()
        domains += t.column("domain").to_pylist()
        n = np.load(work_dir / f"{c.key}.len.npy")
        if n.size != t.num_rows:
            raise RuntimeError(f"chunk {c.key} of {c.path} has {n.size} lengths for {t.num_rows} rows; delete {work_dir}")
        lengths.append(n)
        chunk_idx.append(np.full(n.size, i, dtype=np.int32))
        offsets.append(np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if n.size else n)
        files.append(work_dir / f"{c.key}.tok")
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt))  # noqa: E731
    return DocTable(ids, sources, domains, cat(lengths, np.int64), cat(chunk_idx, np.int32), cat(offsets, np.int64), files)


def available_by_source(docs: DocTable) -> dict[tuple[str, str], tuple[int, int]]:
    """(domain, source) -> (documents, tokens incl. one EOT each)."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, (s, d) in enumerate(zip(docs.sources, docs.domains)):
        acc = out.setdefault((d, s), [0, 0])
        acc[0] += 1
        acc[1] += int(docs.lengths[i]) + 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def select_documents(docs: DocTable, budgets: dict[str, int], seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Documents (with repeat index) that realise each source's budget.

    Whole passes over the source in corpus order, then the fractional pass: a seeded permutation of the
    source's documents, taking the longest prefix whose tokens (EOT included) fit in what is left.

    Returns:
        (doc indices, repeat indices, tokens selected per source incl. EOT).
    """
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(docs.sources):
        by_source.setdefault(s, []).append(i)
    doc_out, rep_out, realized = [], [], {}
    for source in sorted(by_source):
        idx = np.asarray(by_source[source], dtype=np.int64)
        sizes = docs.lengths[idx] + 1
        avail = int(sizes.sum())
        budget = budgets.get(source, 0)
        if budget <= 0 or avail == 0:
            realized[source] = 0
            continue
        full, rest = divmod(budget, avail)
        for r in range(full):
            doc_out.append(idx)
            rep_out.append(np.full(idx.size, r, dtype=np.int32))
        perm = seeded_rng(seed, "sample", source).permutation(idx.size)
        take = int(np.searchsorted(np.cumsum(sizes[perm]), rest, side="right"))
        part = np.sort(perm[:take])  # corpus order inside the pass; the global shuffle comes later
        doc_out.append(idx[part])
        rep_out.append(np.full(part.size, full, dtype=np.int32))
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


def plan_sequences(docs: DocTable, doc_idx: np.ndarray, repeats: np.ndarray, seq_len: int, buckets: list[Bucket],
                   seed: int) -> SequencePlan:  # fmt: skip
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
        total = min(int(s.num_sequences / bk.fraction) for s, bk in zip(streams, buckets))
        counts = [min(s.num_sequences, int(total * bk.fraction)) for s, bk in zip(streams, buckets)]
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
        "buckets": {bk.name: {"docs": int(s.docs.size), "sequences_available": s.num_sequences, "sequences": n,
                              "fraction": (n / labels.size) if labels.size else 0.0}  # fmt: skip
                    for s, bk, n in zip(streams, buckets, counts)},
    }
    return SequencePlan(streams, order, stats)


def sequence_pieces(stream: Stream, seq: int, seq_len: int) -> Iterator[tuple[int, int, int, int]]:
    """(position in stream.docs, first, stop, eot) pieces of one sequence, in order.

    `first:stop` are positions inside the document's ids; `eot` is 1 when its EOT lies in this sequence.
    """
    a, e = seq * seq_len, (seq + 1) * seq_len
    k = int(np.searchsorted(stream.ends, a, side="right"))
    while a < e:
        end = int(stream.ends[k])
        size = end - (int(stream.ends[k - 1]) if k else 0)
        start_in_doc = size - (end - a)
        stop_in_slot = min(size, start_in_doc + (e - a))
        n_ids = size - 1
        yield k, start_in_doc, min(stop_in_slot, n_ids), int(stop_in_slot == size)
        a += stop_in_slot - start_in_doc
        k += 1
