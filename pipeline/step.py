"""The `Step` contract: content-keyed work units, one lineage and stats path, per-unit completion markers.

A step (datatrove's `PipelineStep`, cut into units instead of ranks) has

- `name`: its folder under `steps/` and the `step` column of its lineage rows;
- `config()`: what, besides the code, decides its output (a JSON-able dict); the step fingerprint hashes it with
  the data-path code version;
- `units()`: deterministic work units in global input order, each with a content key (an input file, an upstream
  unit, a band, a shard index) and the fingerprint of exactly the inputs it reads;
- `run(unit, out)`: streams the unit's documents and writes its docs, lineage and stats through `out`
  (a `UnitWriter` over `steps/<name>/units/<key>/`);
- optionally `reduce(results, out_dir)`: the global phase (duplicate clustering, the shard plan), run once
  after every unit, with its own marker.

Because a unit's output depends only on its key, its inputs and the step's config, the files are the same bytes
whether 1, 2 or 16 workers ran the units, on one machine or on Ray. A unit is built in
`<key>.tmp-<host>-<pid>` and renamed into place after its `_SUCCESS.json` is written, so a kill at any moment
leaves either no unit or a complete one, and a rerun redoes only the units without a matching marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.io import ParquetSink, atomic_write_json, dir_fingerprint, fingerprint, pid_alive, read_rows
from core.paths import REPO_ROOT, SUCCESS_MARKER
from pipeline.layout import DOCS, LINEAGE, QUARANTINE, temp_suffix
from schemas import DOCUMENT_SCHEMA, LINEAGE_SCHEMA, QUARANTINE_SCHEMA, Document, LineageRecord, QuarantineRecord

# --- typed stats -------------------------------------------------------------------------------------


@dataclass
class StepStats:
    """Counts of one unit (or, merged, of a whole step): the funnel is built from these alone."""

    docs_in: int = 0
    docs_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> documents
    modified: Counter[str] = field(default_factory=Counter)  # reason -> changes
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> input records
    extra: dict[str, Any] = field(default_factory=dict)  # step-specific numbers (clusters, tokens, ...)

    @property
    def records_read(self) -> int:
        """Input records of an ingest unit: documents it produced + records it quarantined."""
        return self.docs_out + sum(self.quarantined.values()) if self.quarantined else self.docs_in

    def merge(self, other: StepStats) -> StepStats:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.dropped.update(other.dropped)
        self.modified.update(other.modified)
        self.quarantined.update(other.quarantined)
        for k, v in other.extra.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.extra[k] = self.extra.get(k, 0) + v
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "dropped": dict(sorted(self.dropped.items())),
            "modified": dict(sorted(self.modified.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepStats:
        return cls(
            d["docs_in"],
            d["docs_out"],
            Counter(d.get("dropped", {})),
            Counter(d.get("modified", {})),
            Counter(d.get("quarantined", {})),
            dict(d.get("extra", {})),
        )


# --- units ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One piece of a step's work.

    Args:
        key: content key, a safe file name; the unit's output folder is named after it.
        inputs: fingerprint of what the unit reads (file stats, an upstream unit's output hash, ...).
        payload: what `run` needs to find its input (paths, row range, band index); JSON-able.
    """

    key: str
    inputs: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitResult:
    """A finished unit: where its files are, their hash, its stats, and whether this run computed it."""

    key: str
    dir: Path
    output: str
    stats: StepStats
    skipped: bool


class UnitWriter:
    """The one lineage and stats path of every step: docs, lineage and quarantine of one unit.

    `append(rec)` makes it a lineage sink for `filters.base.run_chain`; dedup, decontamination and every other
    step record their decisions through the same method, so the funnel counts and the lineage rows can never
    disagree.
    """

    def __init__(self, directory: Path, documents: bool = True) -> None:
        self.dir = directory
        self.stats = StepStats()
        # A step that writes arrays instead of documents (signatures, edges) passes documents=False.
        self._docs = ParquetSink(directory / DOCS, DOCUMENT_SCHEMA) if documents else None
        self._lineage = ParquetSink(directory / LINEAGE, LINEAGE_SCHEMA) if documents else None
        self._quarantine: ParquetSink | None = None

    def read(self, n: int = 1) -> None:
        """Count documents that entered the unit."""
        self.stats.docs_in += n

    def keep(self, doc: Document) -> None:
        assert self._docs is not None, "this unit writer was made with documents=False"
        self._docs.add(doc.to_row())
        self.stats.docs_out += 1

    def append(self, rec: LineageRecord) -> None:
        """Record a decision: `dropped` and `modified` rows count under their reason."""
        assert self._lineage is not None, "this unit writer was made with documents=False"
        self._lineage.add(rec.to_row())
        if rec.action == "dropped":
            self.stats.dropped[rec.reason or f"{rec.step}_dropped"] += 1
        elif rec.action == "modified":
            self.stats.modified[rec.reason or f"{rec.step}_modified"] += 1

    def tally(self, key: str, n: int = 1) -> None:
        """Add `n` to a count of the unit's stats that is no lineage row (`extra[key]`, summed over units)."""
        self.stats.extra[key] = self.stats.extra.get(key, 0) + n

    def drop(self, doc_id: str, step: str, reason: str, score: float | None = None, **dup: Any) -> None:
        self.append(LineageRecord(doc_id, step, "dropped", reason, score, **dup))

    def quarantine(self, rec: QuarantineRecord) -> None:
        if self._quarantine is None:
            self._quarantine = ParquetSink(self.dir / QUARANTINE, QUARANTINE_SCHEMA)
        self._quarantine.add(rec.to_row())
        self.stats.quarantined[rec.reason] += 1

    def close(self) -> StepStats:
        for sink in (self._docs, self._lineage, self._quarantine):
            if sink is not None:
                sink.close()
        return self.stats


def iter_unit_docs(unit_dir: Path) -> Iterator[Document]:
    """The documents a unit wrote, in order."""
    for row in read_rows(unit_dir / DOCS):
        yield Document.from_row(row)


def count_unit_docs(unit_dirs: Iterable[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for d in unit_dirs for p in sorted((d / DOCS).rglob("*.parquet")))


# --- the step contract -----------------------------------------------------------------------------------

# The packages whose code decides what a step writes (the trainer and the flows do not).
DATA_PATH_PACKAGES = ("schemas", "ingest", "filters", "scoring", "dedup", "synth", "pipeline", "core")


@lru_cache(maxsize=1)
def code_version(root: Path = REPO_ROOT) -> str:
    """Hash of the data-path source code under `root`: editing a filter (or the synth client) invalidates the
    steps it could change."""
    h = hashlib.sha256()
    for pkg in DATA_PATH_PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


class Step:
    """Base class of every stage step; see the module docstring. Subclasses must stay picklable (they are sent
    to worker processes and Ray): build heavy objects (models, indexes) lazily, per process, in `run`."""

    name: str = "step"
    reduce_phase: bool = False  # True when the subclass implements `reduce`
    # True when units load models (language ID, classifiers, a language model): a pool's workers are replaced
    # after the step (`Executor.release_workers`), so the steps after it do not carry that memory.
    loads_models: bool = False

    def config(self) -> dict[str, Any]:
        return {}

    def fingerprint(self) -> str:
        return fingerprint(self.name, self.config(), code_version())

    def units(self) -> list[Unit]:
        raise NotImplementedError

    def run(self, unit: Unit, out: UnitWriter) -> None:
        raise NotImplementedError

    def reduce(self, results: list[UnitResult], out_dir: Path) -> dict[str, Any]:
        """The global phase: read the units' outputs, write under `out_dir`, return JSON-able stats."""
        raise NotImplementedError

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory)


def unit_fingerprint(step_fp: str, unit: Unit) -> str:
    return fingerprint(step_fp, unit.key, unit.inputs)


def read_marker(directory: Path, name: str = SUCCESS_MARKER) -> dict[str, Any] | None:
    try:
        return json.loads((directory / name).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def finished(directory: Path, unit_fp: str) -> UnitResult | None:
    """The unit's result when `directory` holds a complete run with this fingerprint, else None."""
    m = read_marker(directory)
    if m is None or m.get("fingerprint") != unit_fp:
        return None
    return UnitResult(directory.name, directory, m["output"], StepStats.from_json(m["stats"]), skipped=True)


def remove_stale_temps(parent: Path, name: str) -> None:
    """Delete `<name>.tmp-<host>-<pid>` leftovers of dead processes on this host (a live one is left alone)."""
    host = socket.gethostname()
    for stale in parent.glob(f"{name}.tmp-*"):
        tail = stale.name[len(name) + len(".tmp-") :]
        stale_host, _, pid = tail.rpartition("-")
        if stale_host == host and not pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def commit_dir(tmp: Path, final: Path) -> None:
    """Swap a finished temporary directory into place: a kill at any point leaves the old complete directory,
    the new complete one, or none; never a marker over partial files."""
    old = final.with_name(f"{final.name}.old{temp_suffix()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def run_unit(step: Step, unit: Unit, unit_dir: Path, step_fp: str) -> UnitResult:
    """Run one unit unless its marker matches; executors call exactly this function, wherever they run it."""
    ufp = unit_fingerprint(step_fp, unit)
    done = finished(unit_dir, ufp)
    if done is not None:
        return done
    unit_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(unit_dir.parent, unit_dir.name)
    tmp = unit_dir.with_name(unit_dir.name + temp_suffix())
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    t0, c0 = time.time(), time.process_time()
    try:
        out = step.writer(tmp)
        step.run(unit, out)
        stats = out.close()
        output = dir_fingerprint(tmp)
        # Timings live in the marker only (never in the outputs): where the time goes, per unit.
        timing = {
            "started": round(t0, 3),
            "wall_s": round(time.time() - t0, 4),
            "cpu_s": round(time.process_time() - c0, 4),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        atomic_write_json(
            tmp / SUCCESS_MARKER,
            {"fingerprint": ufp, "key": unit.key, "output": output, "stats": stats.to_json(), "timing": timing},
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_dir(tmp, unit_dir)
    _audit(step.name, unit.key)
    return UnitResult(unit.key, unit_dir, output, stats, skipped=False)


def _audit(step: str, key: str) -> None:
    """With CORPUSFORGE_UNIT_LOG=<file>, append `<step>\t<key>` for every unit computed (not skipped): how a
    user (and the kill tests) counts work that a resumed run redid. One short O_APPEND write: atomic."""
    path = os.environ.get("CORPUSFORGE_UNIT_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{step}\t{key}\n".encode())
        finally:
            os.close(fd)
