"""Tokenize a corpus once into resumable chunks: one chunk per (Parquet file, row group), in sorted path order.

A chunk is two files, `<key>.tok` (uint32 ids of its documents, back to back, no EOT) and `<key>.len.npy` (ids
per document); the lengths are written last and mark the chunk complete. The key hashes the file's bytes, the
row group and the tokenizer, so a changed input or tokenizer never reuses a stale chunk. The stage runs each
chunk as a work unit (`sharding.steps.TokenizeStep`). The work inside a chunk is cut into ~1 MB row ranges for
the encoding threads, so large row groups still use every core.

Why a module of its own: tokenizing is the one expensive pass over the corpus and is reused across mixtures;
selecting and packing documents (sharding/pack.py) reads only its outputs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from core.io import file_sha256

TOKENIZE_VERSION = 1  # bump when the way a document becomes ids changes


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


def read_text(chunk: Chunk, batch_bytes: int | None = None) -> Iterator[Any]:
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


def text_lengths(column: Any) -> np.ndarray:
    """UTF-8 bytes per row of a (large_)string array, from its offsets buffer (no pyarrow.compute import)."""
    import pyarrow as pa

    if len(column) == 0:
        return np.zeros(0, dtype=np.int64)
    wide = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64 if wide else np.int32)
    return np.diff(offsets[column.offset : column.offset + len(column) + 1]).astype(np.int64)


def row_ranges(column: Any, target_bytes: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of roughly `target_bytes` UTF-8 bytes each (a document is never split)."""
    n = len(column)
    if n == 0:
        return []
    ends = np.cumsum(text_lengths(column))
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


def chunk_complete(prefix: Path) -> bool:
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
        for column in read_text(chunk, 2 * WORK_BYTES):
            size = int(text_lengths(column).sum())
            nbytes += size
            # Units run one after another in a process: a chunk of a few MB must still keep every thread busy.
            target = max(MIN_WORK_BYTES, min(WORK_BYTES, size // (2 * num_proc))) if num_proc > 1 else WORK_BYTES
            parts.extend(pool.submit(_encode_rows, tok, column, a, b) for a, b in row_ranges(column, target))
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
    todo = [c for c in chunks if not chunk_complete(work_dir / c.key)]
    stats = {"chunks": len(chunks), "chunks_tokenized": len(todo), "docs": 0, "tokens": 0, "bytes": 0}
    tok = load_tokenizer(tok_name) if todo else None
    for chunk in todo:
        for k, v in tokenize_chunk(chunk, tok, work_dir / chunk.key, num_proc).items():
            stats[k] += v
    return stats
