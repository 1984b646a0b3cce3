"""`RunLayout`: every path under a run directory, in one place.

No other module spells out where a step, the corpus, the shards or the report live; they ask the layout::

    <run>/
      .lock                                  # held for the whole run (core.io.run_lock)
      funnel.json                            # the stage summary a person and `flows.query` read
      steps/<step>/_STEP.json                # the step's fingerprint, its units in order, merged stats
      steps/<step>/units/<unit key>/         # one work unit's docs/, lineage/, quarantine/ ... + _SUCCESS.json
      steps/<step>/reduce/                   # the step's global phase (clusters, shard plan) + _SUCCESS.json
      corpus/{docs,lineage,quarantine,ingested,synthetic}/  # the final corpus that DuckDB reads (hard links)
      corpus/_SUCCESS.json                   # written last: the corpus is complete
      shards/<stage>/                        # manifest.json, shard-*.bin, placements/ (the trainer handoff)
      logs/prefect.log                       # the Prefect flow and task run records (the terminal shows none)
      logs/prefect-server.log                # the private Prefect server's own output
      train/  report/  synth/

Unit outputs are named after the unit's content key, never after the process that wrote them, so the bytes
under a run directory do not depend on how many workers ran it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from core.paths import STEP_MARKER, SUCCESS_MARKER

DOCS, LINEAGE, QUARANTINE = "docs", "lineage", "quarantine"
# The corpus's record of every document that entered the stage, and of every synthetic generation.
INGESTED, SYNTHETIC = "ingested", "synthetic"
PLACEMENTS = "placements"  # shards/<stage>/placements/: where each document's tokens landed


def temp_suffix() -> str:
    """`.tmp-<host>-<pid>`: a temporary name that says who is writing it (a cluster shares the directory)."""
    return f".tmp-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    # --- steps ---------------------------------------------------------------------------------------
    @property
    def steps(self) -> Path:
        return self.root / "steps"

    def step(self, name: str) -> Path:
        return self.steps / name

    def step_marker(self, name: str) -> Path:
        return self.step(name) / STEP_MARKER

    def units(self, step: str) -> Path:
        return self.step(step) / "units"

    def unit(self, step: str, key: str) -> Path:
        return self.units(step) / key

    def reduce(self, step: str) -> Path:
        return self.step(step) / "reduce"

    # --- published outputs ---------------------------------------------------------------------------
    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def corpus_docs(self) -> Path:
        return self.corpus / DOCS

    @property
    def corpus_lineage(self) -> Path:
        return self.corpus / LINEAGE

    @property
    def corpus_quarantine(self) -> Path:
        return self.corpus / QUARANTINE

    @property
    def corpus_ingested(self) -> Path:
        return self.corpus / INGESTED

    @property
    def corpus_synthetic(self) -> Path:
        return self.corpus / SYNTHETIC

    @property
    def corpus_marker(self) -> Path:
        """Written last by `publish_corpus`: a corpus folder without it is not finished."""
        return self.corpus / SUCCESS_MARKER

    @property
    def shards_root(self) -> Path:
        return self.root / "shards"

    def shards(self, stage: str) -> Path:
        return self.shards_root / stage

    def manifest(self, stage: str) -> Path:
        return self.shards(stage) / "manifest.json"

    def placements(self, stage: str) -> Path:
        return self.shards(stage) / PLACEMENTS

    @classmethod
    def of_manifest(cls, manifest: Path | str) -> RunLayout:
        """The run whose `shards/<stage>/manifest.json` this is: the trainer's way from the shards it is given back
        to their run (its `train/`, the runs folder beside it)."""
        return cls(Path(manifest).resolve().parents[2])

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def synth(self) -> Path:
        return self.root / "synth"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def prefect_log(self) -> Path:
        """Prefect's flow and task run records of every run into this directory (appended)."""
        return self.logs / "prefect.log"

    @property
    def prefect_server_log(self) -> Path:
        """What the private Prefect server (flows/server.py) printed: its start-up and shutdown."""
        return self.logs / "prefect-server.log"

    @property
    def funnel(self) -> Path:
        return self.root / "funnel.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"
