"""Exact and MinHash dedup, and decontamination, as work units.

Documents are numbered in global input order (the upstream units in order, rows in order), so the survivor of a
cluster is its first document whatever the number of workers, and duplicates in different units are found:

    exact:   dedup_exact_keys   one unit per upstream unit: a 128-bit hash per document     -> keys.npy, ids.txt
             (reduce)           every unit's keys sorted together (disk-backed), union-find -> clusters.parquet
             dedup_exact        one unit per upstream unit: keep the survivors, lineage for the others
    minhash: dedup_minhash_signatures  per upstream unit: signatures + band keys           -> *.npy, ids.txt
             dedup_minhash_edges       one unit per band: equal keys across all units, verified by the
                                       signature-estimated Jaccard                          -> edges.npy
             (reduce)                  union-find once over every band's edges              -> clusters.parquet
             dedup_minhash             per upstream unit: apply, as exact
    decontam: one unit per upstream unit.

Lineage rows keep the step names users query (`exact_dedup`, `minhash_dedup`, `decontam`).

Cluster sizes: each clustering unit also saves every document's carried size (`weights.npy`: its metadata's
`dup_cluster_size`, else 1), and a cluster's `total_size` is the sum over its members, so a MinHash survivor that
stands for exact duplicates counts them too. The survivor keeps it as `metadata.dup_cluster_size`: the number of
input documents it stands for, which the mixture's rehydration reads (FineWeb-2's `minhash_cluster_size`).

Per language (`per_language = true` in `[dedup.exact]` / `[dedup.minhash]`, as FineWeb-2 deduplicates): every
key is salted with a 64-bit hash of the document's `lang` (the exact hash's seed; XORed into each band key), so
documents of different languages never share a key and never meet; documents without `lang` share salt 0, which
leaves their keys as without the option.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dedup.clusters import KeySpill, UnionFind
from pipeline.runner import StepResult
from pipeline.step import Step, Unit, UnitResult, UnitWriter, iter_unit_docs
from schemas import DUP_CLUSTER_SIZE, Document, LineageRecord

log = logging.getLogger(__name__)

CLUSTERS = "clusters.parquet"
WEIGHTS = "weights.npy"  # per unit: the size each document already stands for (int32)
_U64_MASK = (1 << 64) - 1


def language_seed(lang: str | None) -> int:
    """The 64-bit salt of a language's dedup keys (per-language dedup); 0 without a language, as with no salt."""
    import xxhash

    return xxhash.xxh3_64_intdigest(lang) if lang else 0


def carried_size(metadata: dict[str, Any]) -> int:
    """The input documents a document already stands for: a survivor of an earlier dedup keeps its cluster's
    `dup_cluster_size` in its metadata (another value, or none, counts as 1)."""
    size = metadata.get(DUP_CLUSTER_SIZE)
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else 1


def _upstream_units(upstream: StepResult) -> list[Unit]:
    return [Unit(u.key, u.output, {"dir": str(u.dir)}) for u in upstream.units]


def _offsets(units: list[UnitResult]) -> np.ndarray:
    """Global number of each unit's first document (units in order)."""
    counts = np.array([u.stats.docs_in for u in units], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


def _write_ids(path: Path, ids: list[str]) -> None:
    for doc_id in ids:
        if "\n" in doc_id:
            raise ValueError(f"doc_id {doc_id!r} contains a newline")
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


def _read_ids(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_clusters(out_dir: Path, roots: np.ndarray, units: list[UnitResult]) -> dict[str, Any]:
    """clusters.parquet: one row per document in a cluster of size >= 2 (global position, survivor position,
    cluster size, total size = the members' carried sizes summed, cluster id = the survivor's doc id), and the
    step's cluster stats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(roots)
    size = np.bincount(roots, minlength=n) if n else np.zeros(0, np.int64)
    pos = np.flatnonzero(size[roots] >= 2) if n else np.zeros(0, np.int64)
    root = roots[pos].astype(np.int64)
    weights = np.concatenate([np.load(u.dir / WEIGHTS) for u in units]) if n else np.zeros(0, np.int32)
    total = np.zeros(n, np.int64)
    np.add.at(total, root, weights[pos])
    offsets = _offsets(units)
    survivors = np.unique(root)
    ids: dict[int, str] = {}
    unit_of = np.searchsorted(offsets, survivors, side="right") - 1
    for j in np.unique(unit_of).tolist():
        unit_ids = _read_ids(units[j].dir / "ids.txt")
        for s in survivors[unit_of == j].tolist():
            ids[s] = unit_ids[s - offsets[j]]
    table = pa.table(
        {
            "pos": pa.array(pos, pa.int64()),
            "root": pa.array(root, pa.int64()),
            "size": pa.array(size[root] if len(root) else np.zeros(0, np.int64), pa.int32()),
            "total_size": pa.array(total[root] if len(root) else np.zeros(0, np.int64), pa.int64()),
            "cluster_id": pa.array([ids[r] for r in root.tolist()], pa.string()),
        }
    )
    pq.write_table(table, out_dir / CLUSTERS, compression="zstd")
    sizes = np.sort(size[survivors])[::-1] if len(survivors) else np.zeros(0, np.int64)
    return {
        "docs": int(n),
        "clusters": int(len(survivors)),
        "duplicates": int(len(pos) - len(survivors)),
        "largest_clusters": sizes[:5].tolist(),
        "cluster_size_counts": {str(k): int(v) for k, v in zip(*np.unique(sizes, return_counts=True))},
    }


# --- exact ---------------------------------------------------------------------------------------------


class ExactKeysStep(Step):
    """Per unit, the 128-bit xxh3 hash of each document's normalized text (seeded by its language with
    `per_language`); reduce: the clusters."""

    name = "dedup_exact_keys"
    reduce_phase = True

    def __init__(self, params: dict[str, Any], upstream: StepResult, per_language: bool = False) -> None:
        self.params = params  # ExactDedup's arguments: normalize, max_memory_mb
        self.upstream = upstream
        self.per_language = per_language

    def config(self) -> dict[str, Any]:
        return {**self.params, "per_language": True} if self.per_language else self.params

    def units(self) -> list[Unit]:
        return _upstream_units(self.upstream)

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)

    def run(self, unit: Unit, out: UnitWriter) -> None:
        import xxhash

        from dedup.exact import normalize_text

        normalize = self.params.get("normalize", True)
        ids, hi, lo, weights = [], [], [], []
        for doc in iter_unit_docs(Path(unit.payload["dir"])):
            seed = language_seed(doc.lang) if self.per_language else 0
            h = xxhash.xxh3_128_intdigest(normalize_text(doc.text) if normalize else doc.text, seed)
            ids.append(doc.id)
            hi.append(h >> 64)
            lo.append(h & _U64_MASK)
            weights.append(carried_size(doc.metadata))
        np.save(out.dir / WEIGHTS, np.array(weights, np.int32))
        np.save(
            out.dir / "keys.npy",
            np.stack([np.array(hi, np.uint64), np.array(lo, np.uint64)], axis=1)
            if ids
            else np.zeros((0, 2), np.uint64),
        )
        _write_ids(out.dir / "ids.txt", ids)
        out.read(len(ids))
        out.stats.docs_out = len(ids)

    def reduce(self, results: list[UnitResult], out_dir: Path) -> dict[str, Any]:
        offsets = _offsets(results)
        n = int(offsets[-1])
        if n >= 2**32 - 1:
            raise ValueError(f"{n} documents: more than the uint32 doc index allows")
        spill = KeySpill(out_dir / "keys.bin", two_keys=True, max_memory_mb=self.params.get("max_memory_mb", 512) / 2)
        for u, off in zip(results, offsets[:-1].tolist()):
            keys = np.load(u.dir / "keys.npy")
            spill.append(keys[:, 0], np.arange(off, off + len(keys), dtype=np.uint32), keys[:, 1])
        uf = UnionFind(n)
        for a, b in spill.edges():
            uf.union(a, b)
        for p in out_dir.glob("keys.bin*"):
            p.unlink()
        return write_clusters(out_dir, uf.roots(), results)


# --- MinHash -------------------------------------------------------------------------------------------


class MinHashSignaturesStep(Step):
    """Per unit: (n, K) uint32 signatures, (n, B) uint64 band keys, and which documents have tokens."""

    name = "dedup_minhash_signatures"

    def __init__(self, params: dict[str, Any], upstream: StepResult, per_language: bool = False) -> None:
        self.params = params  # MinHashDedup's arguments
        self.upstream = upstream
        self.per_language = per_language  # band keys salted by the document's language

    def config(self) -> dict[str, Any]:
        return {**self.params, "per_language": True} if self.per_language else self.params

    def units(self) -> list[Unit]:
        return _upstream_units(self.upstream)

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)

    def run(self, unit: Unit, out: UnitWriter) -> None:
        from dedup.minhash import MinHashDedup, MinHasher, band_keys

        mh = MinHashDedup(**self.params)
        hasher = MinHasher(mh.num_hashes, mh.seed, mh.chunk_rows)
        ids: list[str] = []
        salts: list[int] = []
        weights: list[int] = []
        sigs, has, batch, chars = [], [], [], 0

        def flush() -> None:
            nonlocal batch, chars
            sh, doc, has_tokens = mh.shingles(batch)
            sigs.append(hasher.signatures(sh, doc, len(batch)))
            has.append(has_tokens)
            batch, chars = [], 0

        for doc in iter_unit_docs(Path(unit.payload["dir"])):
            ids.append(doc.id)
            salts.append(language_seed(doc.lang) if self.per_language else 0)
            weights.append(carried_size(doc.metadata))
            batch.append(doc.text)
            chars += len(doc.text)
            if chars >= mh.batch_chars:
                flush()
        if batch:
            flush()
        sig = np.concatenate(sigs) if sigs else np.zeros((0, mh.num_hashes), np.uint32)
        np.save(out.dir / "signatures.npy", sig)
        np.save(out.dir / "has_tokens.npy", np.concatenate(has) if has else np.zeros(0, bool))
        keys = band_keys(sig, mh.num_bands, mh.rows_per_band)
        if self.per_language:  # a key of one language never equals one of another (but by 2^-64 chance)
            keys ^= np.array(salts, np.uint64)[:, None]
        np.save(out.dir / "band_keys.npy", keys)
        np.save(out.dir / WEIGHTS, np.array(weights, np.int32))
        _write_ids(out.dir / "ids.txt", ids)
        out.read(len(ids))
        out.stats.docs_out = len(ids)


class MinHashEdgesStep(Step):
    """One unit per band: documents of every unit with an equal band key, verified by estimated Jaccard;
    reduce: one union-find over all bands' edges -> clusters.parquet."""

    name = "dedup_minhash_edges"
    reduce_phase = True

    def __init__(self, params: dict[str, Any], signatures: StepResult) -> None:
        self.params = params
        self.signatures = signatures

    def config(self) -> dict[str, Any]:
        return self.params

    def units(self) -> list[Unit]:
        from dedup.minhash import MinHashDedup

        inputs = self.signatures.output
        return [Unit(f"band-{b:03d}", inputs, {"band": b}) for b in range(MinHashDedup(**self.params).num_bands)]

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)

    def run(self, unit: Unit, out: UnitWriter) -> None:
        from dedup.minhash import MinHashDedup

        mh = MinHashDedup(**self.params)
        band = unit.payload["band"]
        units = self.signatures.units
        offsets = _offsets(units)
        spill = KeySpill(out.dir / "band.bin", two_keys=False, max_memory_mb=mh.max_memory_mb / 2)
        sigs = []
        for u, off in zip(units, offsets[:-1].tolist()):
            keys = np.load(u.dir / "band_keys.npy", mmap_mode="r")
            has = np.flatnonzero(np.load(u.dir / "has_tokens.npy"))
            spill.append(np.ascontiguousarray(keys[has, band]), (has + off).astype(np.uint32))
            sigs.append(np.load(u.dir / "signatures.npy", mmap_mode="r"))
        need = None if mh.min_jaccard is None else int(np.ceil(mh.min_jaccard * mh.num_hashes - 1e-9))
        us, vs = [], []
        for a, b in spill.edges():
            if need is not None and len(a):
                same = np.count_nonzero(_gather(sigs, offsets, a) == _gather(sigs, offsets, b), axis=1)
                a, b = a[same >= need], b[same >= need]
            us.append(a)
            vs.append(b)
        (out.dir / "band.bin").unlink(missing_ok=True)
        edges = np.stack([np.concatenate(us), np.concatenate(vs)], axis=1) if us else np.zeros((0, 2), np.int64)
        np.save(out.dir / "edges.npy", edges.astype(np.int64))
        out.stats.extra["edges"] = int(len(edges))

    def reduce(self, results: list[UnitResult], out_dir: Path) -> dict[str, Any]:
        n = int(_offsets(self.signatures.units)[-1])
        uf = UnionFind(n)
        for r in results:
            e = np.load(r.dir / "edges.npy")
            uf.union(e[:, 0], e[:, 1])
        return write_clusters(out_dir, uf.roots(), self.signatures.units)


def _gather(sigs: list[np.ndarray], offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Signature rows of global document numbers `idx` (each unit's file memory-mapped)."""
    out = np.empty((len(idx), sigs[0].shape[1] if sigs else 0), dtype=np.uint32)
    unit_of = np.searchsorted(offsets, idx, side="right") - 1
    for j in np.unique(unit_of).tolist():
        sel = unit_of == j
        out[sel] = sigs[j][idx[sel] - offsets[j]]
    return out


# --- apply the clusters ----------------------------------------------------------------------------------


class DedupApplyStep(Step):
    """Keep each cluster's survivor and every unique document; a `kept` row for survivors and a `dropped`
    row for duplicates, with the cluster id (the survivor's doc id) and size. A survivor's metadata gets
    `dup_cluster_size`: the input documents it stands for (its cluster's `total_size`).

    Args:
        name: step folder (`dedup_exact`, `dedup_minhash`).
        lineage_name: the lineage `step` (`exact_dedup`, `minhash_dedup`).
        upstream: the documents' step; `keys`: the step whose reduce wrote clusters.parquet and whose units
            number the documents (same units as `upstream`, in order).
    """

    def __init__(
        self, name: str, lineage_name: str, upstream: StepResult, clusters: StepResult, numbering: StepResult
    ) -> None:
        self.name = name
        self.lineage_name = lineage_name
        self.upstream = upstream
        self.clusters = clusters
        self.numbering = numbering

    def units(self) -> list[Unit]:
        offsets = _offsets(self.numbering.units)
        assert [u.key for u in self.numbering.units] == [u.key for u in self.upstream.units]
        clusters = str(self.clusters.reduce_dir / CLUSTERS)
        return [
            Unit(
                u.key,
                f"{u.output}:{self.clusters.output}",
                {"dir": str(u.dir), "offset": int(off), "count": int(n.stats.docs_in), "clusters": clusters},
            )
            for u, n, off in zip(self.upstream.units, self.numbering.units, offsets[:-1].tolist())
        ]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        import pyarrow.parquet as pq

        off = unit.payload["offset"]
        docs = iter_unit_docs(Path(unit.payload["dir"]))
        t = pq.read_table(
            unit.payload["clusters"], filters=[("pos", ">=", off), ("pos", "<", off + unit.payload["count"])]
        )
        columns = ("pos", "root", "size", "total_size", "cluster_id")
        decisions = {p - off: rest for p, *rest in zip(*(t[c].to_pylist() for c in columns))}
        name = self.lineage_name
        for row, doc in enumerate(docs):
            out.read()
            dec = decisions.get(row)
            if dec is None:
                out.keep(doc)
                continue
            root, size, total_size, cluster_id = dec
            if root == off + row:
                out.append(_lineage(doc, name, "kept", f"{name}_survivor", cluster_id, size))
                doc.metadata[DUP_CLUSTER_SIZE] = total_size
                out.keep(doc)
            else:
                out.append(_lineage(doc, name, "dropped", f"{name}_duplicate", cluster_id, size))


def _lineage(doc: Document, step: str, action: str, reason: str, cluster_id: str, size: int) -> LineageRecord:
    return LineageRecord(doc.id, step, action, reason, None, cluster_id, size, doc.lang)


# --- decontamination ---------------------------------------------------------------------------------------

_DECONTAMINATORS: dict[str, Any] = {}  # built once per process (per config): the index takes a moment


class DecontamStep(Step):
    """Drop documents that share an n-gram span with an evaluation set (dedup/decontam.py).

    Args:
        config: the stage's `[decontam]` table; `base_dir`: where relative eval set paths start;
        evals_fingerprint: hash of the evaluation files' contents (a changed eval set reruns the step).
    """

    name = "decontam"

    def __init__(self, config: dict[str, Any], base_dir: Path, evals_fingerprint: str, upstream: StepResult) -> None:
        self.decontam_config = config
        self.base_dir = base_dir
        self.evals_fingerprint = evals_fingerprint
        self.upstream = upstream

    def config(self) -> dict[str, Any]:
        return {"decontam": self.decontam_config, "evals": self.evals_fingerprint}

    def units(self) -> list[Unit]:
        return _upstream_units(self.upstream)

    def run(self, unit: Unit, out: UnitWriter) -> None:
        fp = self.fingerprint()
        if fp not in _DECONTAMINATORS:
            _DECONTAMINATORS[fp] = build_decontaminator(self.decontam_config, self.base_dir)[0]
        decontaminator = _DECONTAMINATORS[fp]
        for doc in iter_unit_docs(Path(unit.payload["dir"])):
            out.read()
            result = decontaminator.check(doc.text)
            if result is True:
                out.keep(doc)
            else:
                _, reason, score = result
                out.drop(doc.id, decontaminator.name, reason, score, lang=doc.lang)


def resolve_eval_sets(config: dict[str, Any], base_dir: Path) -> tuple[list[Any], str]:
    """The `[decontam]` table's evaluation sets, and a fingerprint of their files' contents (no index built).

    Shipped sets (`{ shipped = "gsm8k" }`) or JSON Lines files with paths relative to the stage file; see
    `dedup.evalsets.eval_sets_from_config`. `required = false`: an absent set is skipped with a warning.
    """
    from dedup.evalsets import eval_sets_from_config

    return eval_sets_from_config(config.get("eval_sets", []), base_dir)


def build_decontaminator(config: dict[str, Any], base_dir: Path) -> tuple[Any, str]:
    """A `dedup.decontam.Decontaminator` from a stage's `[decontam]` table, and its eval sets' fingerprint."""
    from dedup.decontam import Decontaminator

    sets, fp = resolve_eval_sets(config, base_dir)
    params = {k: v for k, v in config.items() if k not in ("enabled", "eval_sets")}
    return Decontaminator(sets, **params), fp
