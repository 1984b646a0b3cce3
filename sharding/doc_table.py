"""The document table of a tokenized corpus: every document's id, source, domain, token count and where its ids
lie in the chunk files (sharding/chunks.py), in corpus order, as parallel arrays.

Why a module of its own: the shard plan selects and packs documents from it (sharding/pack.py), the shard
writer gathers their ids through it, and the budget and ablation code count what each source has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sharding.chunks import Chunk


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
