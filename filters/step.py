"""The filter step: the configured chain over each unit of the step before it (one unit in, one unit out)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.io import file_sha256
from pipeline.runner import StepResult
from pipeline.step import Step, Unit, UnitWriter, iter_unit_docs

if TYPE_CHECKING:
    from scoring.config import ScorerConfig

# The chain is built once per process (language-ID and toxicity models take seconds to load) and reused by
# every unit that process runs. Keyed by the step fingerprint, so a config change builds a new one.
_CHAINS: dict[str, list[Any]] = {}


def referenced_files(config: Any) -> list[tuple[str, str]]:
    """(path, sha256) of every config string that names an existing file (user word lists, ...): editing
    such a file must rerun the step that reads it."""
    if isinstance(config, dict):
        return [ref for key in sorted(config) for ref in referenced_files(config[key])]
    if isinstance(config, list):
        return [ref for item in config for ref in referenced_files(item)]
    if isinstance(config, str) and config and Path(config).is_file():
        return [(config, file_sha256(Path(config)))]
    return []


class FilterStep(Step):
    """Language ID, quality, code, safety, PII and secrets, in `filters.chain`'s order.

    Args:
        filters_config: the stage's `[filters]` table.
        upstream: the finished step whose units this one filters.
        name: the step's folder (`synth_filter` for the synthetic documents, kept apart from the real ones).
    """

    name = "filter"
    loads_models = True  # language ID, spaCy, classifiers, scorers: workers are replaced after the step

    def __init__(
        self,
        filters_config: dict[str, Any],
        upstream: StepResult,
        name: str = "filter",
        scorers: tuple[ScorerConfig, ...] = (),
    ) -> None:
        self.filters_config = filters_config
        self.upstream = upstream
        self.name = name
        self.scorers = scorers  # `[scorers.*]`: after the filters (filters/scorer.py)

    def config(self) -> dict[str, Any]:
        scorers = {"scorers": [s.fingerprint() for s in self.scorers]} if self.scorers else {}
        return {"filters": self.filters_config, "files": referenced_files(self.filters_config), **scorers}

    def units(self) -> list[Unit]:
        return [Unit(u.key, u.output, {"dir": str(u.dir)}) for u in self.upstream.units]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        from filters.base import FALLBACK_COUNT_PREFIX, ChainStats, run_chain
        from filters.chain import build_chain
        from filters.scorer import with_scorers

        fp = self.fingerprint()
        if fp not in _CHAINS:
            _CHAINS[fp] = with_scorers(build_chain(self.filters_config), self.scorers)
        docs = iter_unit_docs(Path(unit.payload["dir"]))
        stats = ChainStats()
        for doc in run_chain(_counted(docs, out), _CHAINS[fp], out, stats):
            out.keep(doc)
        for lang, n in sorted(stats.segmentation_fallback.items()):  # counts that are no lineage row
            out.tally(FALLBACK_COUNT_PREFIX + lang, n)


def _counted(docs: Any, out: UnitWriter) -> Any:
    for doc in docs:
        out.read()
        yield doc
