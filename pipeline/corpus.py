"""The last data step: each unit's surviving documents, all of its lineage and its quarantine, published as the
queryable corpus.

`FinalizeStep` writes, per unit, the documents partitioned by domain and source, the unit's lineage rows from
every step plus one `final/kept` row per surviving document, and its ingest quarantine. Its reduce lays these
out as `corpus/{docs,lineage,quarantine}` with file names that carry the unit key (hard links, no copy):

    corpus/docs/domain=<d>/source=<s>/<unit key>-part-00000.parquet
    corpus/lineage/<unit key>-part-00000.parquet
    corpus/quarantine/<unit key>-part-00000.parquet
    corpus/ingested/<unit key>-part-00000.parquet   # every document that entered the stage (the `ingested` view)
    corpus/synthetic/<unit key>-generations.parquet # every synthetic generation, kept or not (`synthetic`)

so the corpus's bytes and names depend on the input and config only, never on the number of workers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from core.io import ParquetSink, atomic_write_json, read_rows
from core.paths import SUCCESS_MARKER
from pipeline.layout import DOCS, INGESTED, LINEAGE, QUARANTINE, SYNTHETIC, RunLayout, temp_suffix
from pipeline.runner import StepResult
from pipeline.step import Step, Unit, UnitResult, UnitWriter, commit_dir, iter_unit_docs, read_marker
from schemas import DOCUMENT_SCHEMA, LineageRecord

GENERATIONS = "generations.parquet"  # what a synth unit writes beside its documents


class FinalizeStep(Step):
    """Args:
    last: the last document step (its units hold the surviving documents).
    decision_steps: every step that wrote lineage, in order (filter, dedup, decontam).
    ingest: the steps documents entered by (ingest, and synth when it ran): their units hold the quarantine, the
        synth step's own lineage (rejected generations) and its generations table.
    """

    name = "final"
    reduce_phase = True

    def __init__(self, last: StepResult, decision_steps: list[StepResult], ingest: StepResult) -> None:
        self.last = last
        self.decision_steps = decision_steps
        self.ingest = ingest

    def units(self) -> list[Unit]:
        out = []
        for u in self.last.units:
            entry = self.ingest.unit(u.key).dir
            lineage_dirs = [str(entry)] * (entry / LINEAGE).is_dir() + [
                str(s.unit(u.key).dir) for s in self.decision_steps
            ]
            inputs = "|".join(
                [u.output, self.ingest.unit(u.key).output] + [s.unit(u.key).output for s in self.decision_steps]
            )
            out.append(
                Unit(
                    u.key,
                    inputs,
                    {"dir": str(u.dir), "lineage": lineage_dirs, "ingest": str(self.ingest.unit(u.key).dir)},
                )
            )
        return out

    def run(self, unit: Unit, out: UnitWriter) -> None:
        sinks: dict[tuple[str, str], ParquetSink] = {}
        for d in unit.payload["lineage"]:
            for row in read_rows(Path(d) / LINEAGE):
                out.append(LineageRecord(**row))
        for doc in iter_unit_docs(Path(unit.payload["dir"])):
            out.read()
            key = (doc.domain, doc.source)
            if key not in sinks:
                sinks[key] = ParquetSink(
                    out.dir / DOCS / f"domain={doc.domain}" / f"source={doc.source}", DOCUMENT_SCHEMA
                )
            sinks[key].add(doc.to_row())
            out.stats.docs_out += 1
            out.append(LineageRecord(doc.id, "final", "kept", lang=doc.lang))
        for sink in sinks.values():
            sink.close()
        quarantine = Path(unit.payload["ingest"]) / QUARANTINE
        if quarantine.is_dir():
            shutil.copytree(quarantine, out.dir / QUARANTINE)
        out.stats.dropped.clear()  # the decisions were counted by the steps that took them
        out.stats.modified.clear()

    def writer(self, directory: Path) -> UnitWriter:
        return _FinalWriter(directory)

    def reduce(self, results: list[UnitResult], out_dir: Path) -> dict[str, Any]:
        files = 0
        for r in results:
            # Every document that entered the stage, kept or not: `lineage` joins to the text of a dropped one.
            trees = [(r.dir, Path()), (self.ingest.unit(r.key).dir / DOCS, Path(INGESTED))]
            for root, prefix in trees:
                for src in sorted(root.rglob("*.parquet")):
                    rel = prefix / src.relative_to(root)
                    dst = out_dir / rel.parent / f"{r.key}-{rel.name}"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.link(src, dst)
                    files += 1
            generations = self.ingest.unit(r.key).dir / GENERATIONS
            if generations.is_file():
                (out_dir / SYNTHETIC).mkdir(exist_ok=True)
                os.link(generations, out_dir / SYNTHETIC / f"{r.key}-{GENERATIONS}")
                files += 1
        for table in (
            DOCS,
            LINEAGE,
            QUARANTINE,
            INGESTED,
            SYNTHETIC,
        ):  # an empty corpus still gets schema-only files for DuckDB
            if not (out_dir / table).is_dir():
                _empty_table(out_dir / table, table)
        return {"files": files, "docs": sum(r.stats.docs_out for r in results)}


class _FinalWriter(UnitWriter):
    """Documents go to per-(domain, source) sinks, so the generic docs sink stays off."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._docs = None


def _empty_table(directory: Path, table: str) -> None:
    from schemas import GENERATION_SCHEMA, LINEAGE_SCHEMA, QUARANTINE_SCHEMA

    schema = {
        DOCS: DOCUMENT_SCHEMA,
        LINEAGE: LINEAGE_SCHEMA,
        QUARANTINE: QUARANTINE_SCHEMA,
        INGESTED: DOCUMENT_SCHEMA,
        SYNTHETIC: GENERATION_SCHEMA,
    }[table]
    ParquetSink(directory, schema).close()


def publish_corpus(layout: RunLayout, final: StepResult) -> None:
    """Make `corpus/` the finalize reduce's tree (hard links), unless it already is."""
    assert final.reduce_dir is not None
    want = (read_marker(final.reduce_dir) or {}).get("output")
    have = read_marker(layout.corpus, SUCCESS_MARKER)
    if have is not None and have.get("output") == want and want is not None:
        return
    tmp = layout.corpus.with_name(layout.corpus.name + temp_suffix())
    shutil.rmtree(tmp, ignore_errors=True)
    for src in sorted(p for p in final.reduce_dir.rglob("*.parquet")):
        dst = tmp / src.relative_to(final.reduce_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)
    atomic_write_json(tmp / SUCCESS_MARKER, {"output": want, "stats": final.reduce_stats})
    commit_dir(tmp, layout.corpus)
