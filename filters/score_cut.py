"""The score cut: a scorer's percentile thresholds (`keep_top`, scoring/config.py) applied to the whole run.

A percentile needs every score before any document can be judged, so it cannot be decided inside one filter unit.
This step reads it in two passes: first the `scores`, `domain` and `lang` columns of every unit of the step before it
(the filter step, with its synthetic twin when `[synth]` ran), which gives each threshold entry's cutoff; then, one
unit per upstream unit, each document below its entry's cutoff is dropped as `scorer_<name>_below_top`, with the
score and the cutoff (`threshold`) in its lineage row, and the rest pass through unchanged.

The cutoffs are part of the step's config, so they are in its fingerprint: a changed upstream unit changes them and
reruns every unit, and the same upstream output gives the same bytes whether 1, 2 or 16 workers run the units.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.layout import DOCS
from pipeline.runner import StepResult
from pipeline.step import Step, Unit, UnitWriter, iter_unit_docs
from scoring.config import ScorerConfig

SCORE_CUT = "score_cut"


def top_share_cutoff(scores: list[float], keep_top: float) -> float:
    """The lowest score kept when keeping the top `keep_top` share of `scores`: the ceil(keep_top * n)-th best
    (at least one document is kept). Every score equal to it is kept too, so ties never depend on order."""
    ranked = sorted(scores, reverse=True)
    return ranked[max(1, math.ceil(keep_top * len(ranked))) - 1]


def read_cutoffs(scorers: tuple[ScorerConfig, ...], unit_dirs: list[Path]) -> dict[str, dict[str, float]]:
    """Per scorer, per `keep_top` entry (`ScoreThreshold.key`), the cutoff over the documents that entry decides.

    Reads only three columns of the units' documents; a document without the scorer's score is not counted.
    """
    import pyarrow.parquet as pq

    pools: dict[tuple[str, str], list[float]] = defaultdict(list)
    shares: dict[tuple[str, str], float] = {}
    for unit_dir in unit_dirs:
        for path in sorted((unit_dir / DOCS).rglob("*.parquet")):
            table = pq.read_table(path, columns=["domain", "lang", "scores"])
            for domain, lang, scores in zip(*(table.column(c).to_pylist() for c in ("domain", "lang", "scores"))):
                values = dict(scores or [])
                for s in scorers:
                    rule = s.rule_for(domain, lang)
                    if rule is not None and rule.keep_top is not None and s.score_key in values:
                        pools[s.name, rule.key].append(values[s.score_key])
                        shares[s.name, rule.key] = rule.keep_top
    cutoffs: dict[str, dict[str, float]] = {s.name: {} for s in scorers}
    for (name, key), pool in sorted(pools.items()):
        cutoffs[name][key] = top_share_cutoff(pool, shares[name, key])
    return cutoffs


class ScoreCutStep(Step):
    """Drop the documents below their scorer's run-level percentile cutoff (see the module docstring).

    Args:
        scorers: the stage's scorers that have a `keep_top` (`ScorerConfig.has_percentiles`).
        upstream: the finished filter step (its units' documents carry the scores).
    """

    name = SCORE_CUT
    loads_models = True  # the scorers' models: workers are replaced after the step

    def __init__(self, scorers: tuple[ScorerConfig, ...], upstream: StepResult) -> None:
        self.scorers = scorers
        self.upstream = upstream
        self._cutoffs: dict[str, dict[str, float]] | None = None

    @property
    def cutoffs(self) -> dict[str, dict[str, float]]:
        """Computed once, where the step is fingerprinted; pickled with the step to the workers."""
        if self._cutoffs is None:
            self._cutoffs = read_cutoffs(self.scorers, [u.dir for u in self.upstream.units])
        return self._cutoffs

    def config(self) -> dict[str, Any]:
        return {"scorers": [s.fingerprint() for s in self.scorers], "cutoffs": self.cutoffs}

    def units(self) -> list[Unit]:
        return [Unit(u.key, u.output, {"dir": str(u.dir)}) for u in self.upstream.units]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        cutoffs = self.cutoffs
        for doc in iter_unit_docs(Path(unit.payload["dir"])):
            out.read()
            below = self._first_below(doc.domain, doc.lang, doc.scores or {}, cutoffs)
            if below is None:
                out.keep(doc)
                continue
            name, score, cutoff = below
            out.drop(doc.id, f"scorer_{name}", f"scorer_{name}_below_top", score, lang=doc.lang, threshold=cutoff)

    def _first_below(
        self, domain: str, lang: str | None, scores: dict[str, float], cutoffs: dict[str, dict[str, float]]
    ) -> tuple[str, float, float] | None:
        """(scorer, score, cutoff) of the first scorer (in name order) whose cutoff the document falls below."""
        for s in self.scorers:
            rule = s.rule_for(domain, lang)
            if rule is None or rule.keep_top is None or s.score_key not in scores:
                continue
            cutoff = cutoffs[s.name].get(rule.key)
            if cutoff is not None and scores[s.score_key] < cutoff:
                return s.name, scores[s.score_key], cutoff
        return None


def percentile_scorers(scorers: tuple[ScorerConfig, ...]) -> tuple[ScorerConfig, ...]:
    """The scorers whose thresholds include a percentile (the score cut runs only when there is one)."""
    return tuple(s for s in scorers if s.has_percentiles)
