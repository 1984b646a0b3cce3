"""The ingest step: one work unit per input file (or code tree) of every source.

A unit reads exactly one entry of `resolve_paths(spec)` into `docs/` and `quarantine/`, so a changed file reruns
its own unit only. With `--limit N` ("at most N records per source", counted across the source's files in
order) a source is one unit, since where its N-th record falls depends on every earlier file.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ingest.readers import input_file_stats, read_path, read_source
from ingest.records import Skipped
from ingest.sources import SourceSpec, check_sources_match, resolve_paths
from pipeline.step import Step, Unit, UnitWriter
from schemas import Document

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def unit_key(source: str, location: str) -> str:
    """`<source>-<readable tail of the location>-<hash>`: a stable, safe folder name for one input."""
    slug = _UNSAFE.sub("_", location).strip("_.")[-40:] or "root"
    return f"{source}-{slug}-{hashlib.sha1(location.encode()).hexdigest()[:10]}"


class IngestStep(Step):
    """Read every source into the document schema; bad records go to quarantine with their reason.

    Args:
        specs: the sources, in file order (their order is the corpus order).
        limit: read at most this many records per source.
    """

    name = "ingest"

    def __init__(self, specs: list[SourceSpec], limit: int | None = None) -> None:
        self.specs = list(specs)
        self.limit = limit
        self.sources_without_files: list[str] = []

    def config(self) -> dict[str, Any]:
        return {"limit": self.limit}

    def units(self) -> list[Unit]:
        # A source that matches nothing is an error (SourcesError) unless it is optional; `flows.stage` checks this
        # before the run starts, this check holds for every other caller.
        units, self.sources_without_files = [], check_sources_match(self.specs)
        for i, spec in enumerate(self.specs):
            paths = resolve_paths(spec)
            stats = input_file_stats(spec)
            if self.limit is not None:
                inputs = hashlib.sha256(repr((spec.to_config(), stats)).encode()).hexdigest()
                units.append(Unit(f"{spec.name}-first{self.limit}", inputs, {"spec": i}))
                continue
            for path, loc in paths:
                mine = [s for s in stats if s[0] == loc or s[0].startswith(loc + "/")]
                inputs = hashlib.sha256(repr((spec.to_config(), loc, mine)).encode()).hexdigest()
                units.append(Unit(unit_key(spec.name, loc), inputs, {"spec": i, "path": str(path), "location": loc}))
        return units

    def run(self, unit: Unit, out: UnitWriter) -> None:
        from pathlib import Path

        spec = self.specs[unit.payload["spec"]]
        if "path" in unit.payload:
            records = read_path(spec, Path(unit.payload["path"]), unit.payload["location"])
        else:
            records = read_source(spec, self.limit)
        for record in records:
            if isinstance(record, Document):
                out.keep(record)
            elif isinstance(record, Skipped):  # no page (a WARC request, warcinfo): counted, not a record read
                key = f"skipped_{record.reason}"
                out.stats.extra[key] = out.stats.extra.get(key, 0) + 1
            else:
                out.quarantine(record)
        out.read(out.stats.docs_out + sum(out.stats.quarantined.values()))
