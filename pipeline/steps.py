"""The steps of a stage as plain functions (no Prefect here; `flows/` orchestrates them).

Each step reads the previous step's `docs/` Parquet, writes its own `docs/` and `lineage/` into the
directory it is given (a temporary one that `StepOutput` renames into place), and returns its stats:
`{"docs_in", "docs_out", "dropped": {reason: n}, "modified": {reason: n}}`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ingest.readers import read_source
from ingest.sources import SourceSpec
from pipeline.io import ParquetSink, read_rows
from schemas import DOCUMENT_SCHEMA, LINEAGE_SCHEMA, QUARANTINE_SCHEMA, Document, LineageRecord

log = logging.getLogger(__name__)

DOCS, LINEAGE, QUARANTINE = "docs", "lineage", "quarantine"


def _progress(it: Iterable, desc: str, total: int | None = None) -> Iterator:
    # disable=None: a bar on a terminal, silence in CI logs.
    return iter(tqdm(it, desc=desc, total=total, unit="doc", disable=None, mininterval=1.0))


def iter_docs(step_dirs: list[Path]) -> Iterator[Document]:
    """Stream the documents of one or more step outputs, in order."""
    for d in step_dirs:
        for row in read_rows(d / DOCS):
            yield Document.from_row(row)


def count_docs(step_dirs: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for d in step_dirs for p in sorted((d / DOCS).rglob("*.parquet")))


def _stats(docs_in: int, docs_out: int, lineage: Iterable[LineageRecord]) -> dict[str, Any]:
    dropped: Counter[str] = Counter()
    modified: Counter[str] = Counter()
    for rec in lineage:
        if rec.action == "dropped":
            dropped[rec.reason or "unknown"] += 1
        elif rec.action == "modified":
            modified[rec.reason or "unknown"] += 1
    return {"docs_in": docs_in, "docs_out": docs_out, "dropped": dict(dropped), "modified": dict(modified)}


# --- ingest ------------------------------------------------------------------------------------------


def ingest_source(spec: SourceSpec, out_dir: Path, limit: int | None = None) -> dict[str, Any]:
    """Read one source into `out_dir/docs` and `out_dir/quarantine`.

    Returns:
        stats with records_read = docs_out + quarantined, and quarantine reasons.
    """
    from ingest.sources import resolve_paths

    num_paths = len(resolve_paths(spec))
    if num_paths == 0:
        log.warning("source %r: no file matches %s", spec.name, list(spec.paths))
    docs = ParquetSink(out_dir / DOCS, DOCUMENT_SCHEMA)
    quarantine = ParquetSink(out_dir / QUARANTINE, QUARANTINE_SCHEMA)
    reasons: Counter[str] = Counter()
    for record in _progress(read_source(spec, limit), desc=f"ingest {spec.name}"):
        if isinstance(record, Document):
            docs.add(record.to_row())
        else:
            quarantine.add(record.to_row())
            reasons[record.reason] += 1
    docs.close()
    quarantine.close()
    return {
        "source": spec.name,
        "paths_matched": num_paths,
        "records_read": docs.rows_written + quarantine.rows_written,
        "docs_in": docs.rows_written + quarantine.rows_written,
        "docs_out": docs.rows_written,
        "quarantined": dict(reasons),
        "dropped": {},
        "modified": {},
    }


# --- filter chain ------------------------------------------------------------------------------------


def filter_docs(in_dirs: list[Path], out_dir: Path, filters_config: dict[str, Any]) -> dict[str, Any]:
    """Run the configured filter chain (language ID, quality, code, safety, PII) over the documents."""
    from filters.base import ChainStats, run_chain
    from filters.chain import build_chain

    steps = build_chain(filters_config)
    stats = ChainStats()
    sink = ParquetSink(out_dir / DOCS, DOCUMENT_SCHEMA)
    lineage = LineageWriter(out_dir / LINEAGE)  # streamed to disk: memory stays flat on any corpus size
    docs = _progress(iter_docs(in_dirs), desc="filter", total=count_docs(in_dirs))
    for doc in run_chain(docs, steps, lineage, stats):
        sink.add(doc.to_row())
    sink.close()
    lineage.close()
    return {"docs_in": stats.docs_in, "docs_out": stats.docs_out, "dropped": dict(stats.dropped),
            "modified": dict(stats.modified)}  # fmt: skip


class LineageWriter:
    """A list-like sink for `LineageRecord`s (`append`) that writes them to Parquet parts as they come."""

    def __init__(self, directory: Path) -> None:
        self._sink = ParquetSink(directory, LINEAGE_SCHEMA)

    def append(self, rec: LineageRecord) -> None:
        self._sink.add(rec.to_row())

    def close(self) -> None:
        self._sink.close()


def _write_lineage(out_dir: Path, lineage: Iterable[LineageRecord]) -> None:
    sink = ParquetSink(out_dir / LINEAGE, LINEAGE_SCHEMA)
    sink.extend(rec.to_row() for rec in lineage)
    sink.close()


# --- dedup and decontamination -----------------------------------------------------------------------


def dedup_docs(in_dir: Path, out_dir: Path, deduper: Any) -> dict[str, Any]:
    """Two passes: find duplicate clusters over (id, text), then keep one survivor per cluster.

    Args:
        deduper: an object with `name` and `find_duplicates(Iterable[(id, text)]) -> {id: DupDecision}`
            (dedup.exact.ExactDedup, dedup.minhash.MinHashDedup).
    """
    total = count_docs([in_dir])
    pairs = ((d.id, d.text) for d in _progress(iter_docs([in_dir]), desc=f"{deduper.name} pass 1", total=total))
    decisions = deduper.find_duplicates(pairs)
    lineage: list[LineageRecord] = []
    sink = ParquetSink(out_dir / DOCS, DOCUMENT_SCHEMA)
    for doc in iter_docs([in_dir]):
        dec = decisions.get(doc.id)
        if dec is None:
            sink.add(doc.to_row())
            continue
        action = "kept" if dec.keep else "dropped"
        reason = f"{deduper.name}_survivor" if dec.keep else f"{deduper.name}_duplicate"
        lineage.append(LineageRecord(doc.id, deduper.name, action, reason, None, dec.cluster_id, dec.cluster_size))
        if dec.keep:
            sink.add(doc.to_row())
    sink.close()
    _write_lineage(out_dir, lineage)
    stats = _stats(total, sink.rows_written, lineage)
    sizes = sorted({(d.cluster_id, d.cluster_size) for d in decisions.values()}, key=lambda c: -c[1])
    stats["clusters"] = len(sizes)
    stats["largest_clusters"] = [size for _, size in sizes[:5]]
    return stats


def decontam_docs(in_dir: Path, out_dir: Path, decontaminator: Any) -> dict[str, Any]:
    """Drop documents that share a long n-gram with an evaluation set.

    Args:
        decontaminator: an object with `name` and `check(text) -> True | (False, reason, score)`.
    """
    lineage: list[LineageRecord] = []
    sink = ParquetSink(out_dir / DOCS, DOCUMENT_SCHEMA)
    total = count_docs([in_dir])
    for doc in _progress(iter_docs([in_dir]), desc="decontam", total=total):
        result = decontaminator.check(doc.text)
        if result is True:
            sink.add(doc.to_row())
            continue
        _, reason, score = result
        lineage.append(LineageRecord(doc.id, decontaminator.name, "dropped", reason, score))
    sink.close()
    _write_lineage(out_dir, lineage)
    return _stats(total, sink.rows_written, lineage)


def build_decontaminator(config: dict[str, Any], base_dir: Path) -> tuple[Any, str]:
    """A `dedup.decontam.Decontaminator` from a stage's `[decontam]` table, and a fingerprint of its
    evaluation files' contents.

    Eval set paths are relative to the stage file. A set with `required = false` whose file is absent is
    skipped with a warning; a required one that is absent is an error naming the path.
    """
    import hashlib

    from dedup.decontam import Decontaminator, EvalSet

    params = {k: v for k, v in config.items() if k not in ("enabled", "eval_sets")}
    sets, h = [], hashlib.sha256()
    for entry in config.get("eval_sets", []):
        path = (base_dir / entry["path"]).resolve()
        if not path.is_file():
            if entry.get("required", True):
                raise FileNotFoundError(f"[decontam] eval set {entry['name']!r}: {path} does not exist")
            log.warning("[decontam] eval set %r not found at %s: decontamination against it skipped", entry["name"], path)
            continue
        sets.append(EvalSet(name=entry["name"], path=path, fields=tuple(entry.get("fields", ("question", "answer")))))
        h.update(entry["name"].encode() + path.read_bytes())
    return Decontaminator(sets, **params), h.hexdigest()


# --- final corpus ------------------------------------------------------------------------------------


def finalize(last_dir: Path, step_dirs: list[Path], quarantine_dirs: list[Path], out_dir: Path) -> dict[str, Any]:
    """Write the queryable corpus: Hive-partitioned docs, all lineage plus a `final/kept` row per
    surviving document, and the quarantine table."""
    lineage_sink = ParquetSink(out_dir / LINEAGE, LINEAGE_SCHEMA)
    for d in step_dirs:
        lineage_sink.extend(read_rows(d / LINEAGE))
    sinks: dict[tuple[str, str], ParquetSink] = {}
    num_docs = 0
    for doc in iter_docs([last_dir]):
        key = (doc.domain, doc.source)
        if key not in sinks:
            sinks[key] = ParquetSink(out_dir / DOCS / f"domain={doc.domain}" / f"source={doc.source}", DOCUMENT_SCHEMA)
        sinks[key].add(doc.to_row())
        lineage_sink.add(LineageRecord(doc.id, "final", "kept").to_row())
        num_docs += 1
    for sink in sinks.values():
        sink.close()
    if not sinks:  # an empty corpus still gets a (schema-only) docs file for DuckDB
        ParquetSink(out_dir / DOCS, DOCUMENT_SCHEMA).close()
    lineage_sink.close()
    quarantine_sink = ParquetSink(out_dir / QUARANTINE, QUARANTINE_SCHEMA)
    for d in quarantine_dirs:
        quarantine_sink.extend(read_rows(d / QUARANTINE))
    quarantine_sink.close()
    return {
        "docs_in": num_docs,
        "docs_out": num_docs,
        "lineage_rows": lineage_sink.rows_written,
        "quarantined": quarantine_sink.rows_written,
        "dropped": {},
        "modified": {},
    }

