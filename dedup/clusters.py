"""The clustering engine both dedup methods share: disk-backed key sorting, union-find, per-document decisions.

Documents are numbered 0..N-1 in global input order. Keys (an exact hash, or one MinHash band) are appended with
the document's number to a `KeySpill`; equal keys are found by sorting, partition by partition on disk when the
records do not fit `max_memory_mb`; a vectorised `UnionFind` joins the documents that share a key, always
hooking the larger root under the smaller, so a cluster's root is its first document: the survivor.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_PARTITION_BITS = 8  # 256 partition files per level: well under the usual open-file limit


@dataclass(frozen=True, slots=True)
class DupDecision:
    """What dedup decided about one document that is in a duplicate cluster (size >= 2)."""

    cluster_id: str  # the doc_id of the cluster's survivor: stable across runs on the same input
    cluster_size: int
    keep: bool  # True for exactly one document per cluster: the first in stream order


class DupResult(Mapping[str, DupDecision]):
    """Read-only mapping doc_id -> DupDecision for the documents in a cluster; absent means unique.

    Backed by numpy arrays (ids as sorted fixed-width bytes, looked up by binary search) rather than a dict,
    so that it costs about `len(id) + 16` bytes per duplicated document.
    """

    def __init__(self, ids: list[str], survivor: np.ndarray, size: np.ndarray, num_docs: int) -> None:
        """Args:
        ids: doc ids of the documents in a cluster, in stream order.
        survivor: for each of them, the position (in `ids`) of its cluster's survivor.
        size: for each of them, its cluster's size.
        num_docs: documents read in pass 1 (for the summary).
        """
        enc = np.array([i.encode("utf-8") for i in ids], dtype=bytes) if ids else np.array([], dtype="S1")
        order = np.argsort(enc, kind="stable")
        self._ids = enc[order]
        if len(self._ids) > 1 and bool(np.any(self._ids[1:] == self._ids[:-1])):
            dup = self._ids[1:][self._ids[1:] == self._ids[:-1]][0].decode()
            raise ValueError(f"doc_id {dup!r} appears more than once in the stream; doc ids must be unique")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        self._stream_pos = order  # row -> position in stream order
        self._survivor_row = rank[np.asarray(survivor, dtype=np.int64)[order]] if len(order) else order
        self._size = np.asarray(size, dtype=np.int32)[order] if len(order) else np.array([], np.int32)
        self.num_docs = num_docs
        self.num_clusters = int(np.count_nonzero(self._survivor_row == np.arange(len(order))))
        self.num_removed = len(order) - self.num_clusters

    def _row(self, doc_id: str) -> int:
        key = doc_id.encode("utf-8")
        row = int(np.searchsorted(self._ids, key))
        if row < len(self._ids) and self._ids[row] == key:
            return row
        return -1

    def __getitem__(self, doc_id: str) -> DupDecision:
        row = self._row(doc_id)
        if row < 0:
            raise KeyError(doc_id)
        surv = int(self._survivor_row[row])
        return DupDecision(self._ids[surv].decode("utf-8"), int(self._size[row]), surv == row)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._row(doc_id) >= 0

    def __iter__(self) -> Iterator[str]:
        for row in np.argsort(self._stream_pos):  # stream order
            yield self._ids[row].decode("utf-8")

    def __len__(self) -> int:
        return len(self._ids)

    def summary(self) -> str:
        return (
            f"{self.num_docs} docs, {self.num_clusters} duplicate clusters, {len(self)} docs in them, "
            f"{self.num_removed} to remove"
        )


class UnionFind:
    """Vectorised union-find over document indices 0..N-1; the root of a set is its smallest index.

    Memory: one int32 per document. Hooking always points the larger root at the smaller one, so the root of
    a cluster is its first document in stream order, i.e. the survivor.
    """

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int32)

    def find(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int32)
        while True:
            p = self.parent[x]
            if np.array_equal(p, x):
                return x
            x = p

    def union(self, u: np.ndarray, v: np.ndarray) -> None:
        """Join the sets of u[i] and v[i] for every i (each pass hooks roots; repeat until all joined)."""
        u = np.asarray(u, dtype=np.int32)
        v = np.asarray(v, dtype=np.int32)
        while len(u):
            ru, rv = self.find(u), self.find(v)
            diff = ru != rv
            if not diff.any():
                return
            ru, rv, u, v = ru[diff], rv[diff], u[diff], v[diff]
            np.minimum.at(self.parent, np.maximum(ru, rv), np.minimum(ru, rv))

    def roots(self) -> np.ndarray:
        """Fully compressed: roots()[i] is the smallest index in i's set."""
        p = self.parent
        while True:
            pp = p[p]
            if np.array_equal(pp, p):
                self.parent = p
                return p
            p = pp


class KeySpill:
    """Append-only file of (key, [key2,] doc index) records, grouped by equal keys in bounded memory.

    Args:
        path: the file (its partitions go next to it).
        two_keys: records carry a second uint64 (exact dedup uses a 128-bit hash).
        max_memory_mb: bound on one in-memory sort (and on the record buffer unless `buffer_mb` is given).
        buffer_mb: bound on the records buffered before an append to the file.
    """

    def __init__(self, path: Path, two_keys: bool, max_memory_mb: float, buffer_mb: float | None = None) -> None:
        fields = [("k", "<u8")] + ([("k2", "<u8")] if two_keys else []) + [("i", "<u4")]
        self.dtype = np.dtype(fields)
        self.path = path
        self.two_keys = two_keys
        self.budget = int(max_memory_mb * 2**20)
        # A sort holds the records, an int64 argsort and a sorted copy: about 2 x record + 8 bytes each.
        self.max_sort_records = max(64, self.budget // (2 * self.dtype.itemsize + 8 * 3))
        buffer_bytes = int(buffer_mb * 2**20) if buffer_mb is not None else self.budget // 2
        self.max_buffer_records = max(64, buffer_bytes // self.dtype.itemsize)
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self.count = 0
        path.write_bytes(b"")

    def append(self, k: np.ndarray, i: np.ndarray, k2: np.ndarray | None = None) -> None:
        rec = np.empty(len(k), dtype=self.dtype)
        rec["k"] = k
        if self.two_keys:
            rec["k2"] = k2
        rec["i"] = i
        self._buf.append(rec)
        self._buffered += len(rec)
        self.count += len(rec)
        if self._buffered >= self.max_buffer_records:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            with open(self.path, "ab") as f:
                np.concatenate(self._buf).tofile(f)
            self._buf, self._buffered = [], 0

    def edges(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (u, v) index arrays joining documents with equal keys.

        Within a run of equal keys (sorted by doc index) every member is joined to the run's first member
        and to its predecessor, so a caller that rejects some edges (MinHash verification) still sees chains.
        """
        self.flush()
        yield from self._edges_of(self.path, self.count, depth=0)

    def _read(self, path: Path, start: int, count: int) -> np.ndarray:
        return np.fromfile(path, dtype=self.dtype, count=count, offset=start * self.dtype.itemsize)

    def _edges_of(self, path: Path, count: int, depth: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if count == 0:
            return
        if count <= self.max_sort_records:
            yield _run_edges(self._read(path, 0, count), self.two_keys)
            return
        shift = 64 - _PARTITION_BITS * (depth + 1)
        if shift < 0:  # every key shares all 64 bits: one huge bucket
            yield from self._edges_one_key(path, count)
            return
        parts = [path.with_name(f"{path.name}.p{j:03d}") for j in range(2**_PARTITION_BITS)]
        counts = np.zeros(len(parts), dtype=np.int64)
        chunk = max(1, self.max_sort_records // 2)
        for start in range(0, count, chunk):
            rec = self._read(path, start, chunk)
            pid = ((rec["k"] >> np.uint64(shift)) & np.uint64(2**_PARTITION_BITS - 1)).astype(np.int64)
            order = np.argsort(pid, kind="stable")
            rec, pid = rec[order], pid[order]
            bounds = np.searchsorted(pid, np.arange(len(parts) + 1))
            for j in np.flatnonzero(np.diff(bounds)):
                with open(parts[j], "ab") as f:
                    rec[bounds[j] : bounds[j + 1]].tofile(f)
                counts[j] += bounds[j + 1] - bounds[j]
        if depth > 0:
            path.unlink()
        for j in np.flatnonzero(counts):
            yield from self._edges_of(parts[j], int(counts[j]), depth + 1)
            parts[j].unlink(missing_ok=True)

    def _edges_one_key(self, path: Path, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Pathological skew (a partition whose records all share the 64-bit key): stream it in chunks and join
        # each chunk's runs to the first document seen with the same second key. Records are in stream order
        # in every file (appends and stable partitioning keep it), so a first occurrence is the smallest index.
        first: dict[int, int] = {}
        chunk = max(1, self.max_sort_records // 2)
        for start in range(0, count, chunk):
            rec = self._read(path, start, chunk)
            yield _run_edges(rec, self.two_keys)
            k2 = rec["k2"] if self.two_keys else np.zeros(len(rec), np.uint64)
            uniq, at = np.unique(k2, return_index=True)
            us, vs = [], []
            for key, j in zip(uniq.tolist(), at.tolist()):
                lo = int(rec["i"][j])
                f = first.setdefault(key, lo)
                if f != lo:
                    us.append(f)
                    vs.append(lo)
            if us:
                yield np.array(us, np.int64), np.array(vs, np.int64)


def _run_edges(rec: np.ndarray, two_keys: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edges first->member and predecessor->member inside each run of equal keys."""
    keys = ("k", "k2", "i") if two_keys else ("k", "i")
    rec = np.sort(rec, order=keys)
    k, idx = rec["k"], rec["i"].astype(np.int64)
    new = np.empty(len(rec), dtype=bool)
    new[:1] = True
    new[1:] = k[1:] != k[:-1]
    if two_keys:
        new[1:] |= rec["k2"][1:] != rec["k2"][:-1]
    pos = np.arange(len(rec))
    run_start = np.maximum.accumulate(np.where(new, pos, 0))
    member = ~new
    u = np.concatenate([idx[run_start[member]], idx[pos[member] - 1]])
    v = np.concatenate([idx[member], idx[member]])
    return u, v


class Workdir:
    """A caller's work directory, or a temporary one removed on close."""

    def __init__(self, workdir: Path | None, prefix: str) -> None:
        if workdir is None:
            self.path = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        else:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=workdir))

    def close(self) -> None:
        # Always our own directory (a fresh one inside the caller's workdir, if given).
        shutil.rmtree(self.path, ignore_errors=True)


class IdSpill:
    """Doc ids written to disk in stream order, so pass 1 keeps none of them in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "w", encoding="utf-8")
        self.count = 0

    def append(self, doc_id: str) -> None:
        if "\n" in doc_id:
            raise ValueError(f"doc_id {doc_id!r} contains a newline")
        self._f.write(doc_id)
        self._f.write("\n")
        self.count += 1

    def close(self) -> None:
        self._f.close()

    def select(self, positions: np.ndarray) -> list[str]:
        """The ids at the given sorted stream positions."""
        self.close()
        out: list[str] = []
        want = iter(positions.tolist())
        nxt = next(want, None)
        with open(self.path, encoding="utf-8") as f:
            for pos, line in enumerate(f):
                if nxt is None:
                    break
                if pos == nxt:
                    out.append(line[:-1])
                    nxt = next(want, None)
        return out


def build_result(roots: np.ndarray, ids: IdSpill) -> DupResult:
    """Turn union-find roots (root = survivor index) into the per-document decisions."""
    n = len(roots)
    size = np.bincount(roots, minlength=n) if n else np.zeros(0, np.int64)
    in_cluster = np.flatnonzero(size[roots] >= 2) if n else np.zeros(0, np.int64)
    sel_ids = ids.select(in_cluster)
    # Survivor of each selected doc, as a position within the selection (roots are in the selection too).
    survivor = np.searchsorted(in_cluster, roots[in_cluster])
    return DupResult(sel_ids, survivor, size[roots[in_cluster]], n)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
