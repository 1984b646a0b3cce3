"""The `[scorers.<name>]` table of a stage file: score every document with a trained classifier after the filters.

    [scorers.edu]
    model = "../../models/edu"     # a classifier folder (model.bin + card.json), relative to the stage file
    mode = "annotate"              # annotate: every kept document gets scores['edu']; filter: also drop below min
    min_score = 0.5                # filter mode: the threshold where no `thresholds` entry is more specific
    domains = ["web"]              # optional: only these domains are scored (others get no 'edu' score)
    [[scorers.edu.thresholds]]     # optional, filter mode: per domain and/or language
    domain = "web"
    lang = "en"
    min_score = 0.7

The threshold of a document is the most specific entry that matches it: domain and language, then language,
then domain, then `min_score`; a document no threshold covers is kept (with its score). A drop is recorded as
`scorer_<name>_below_min` with the score in the lineage row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config_types import check_table
from schemas import DOMAINS
from scoring.card import CardError, read_card

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ScoreThreshold:
    """One `[[scorers.<name>.thresholds]]` entry: `min_score` for the documents of `domain` and/or `lang`."""

    min_score: float
    domain: str | None = None
    lang: str | None = None


@dataclass(frozen=True)
class ScorerConfig:
    """A checked `[scorers.<name>]` table (see the module docstring); `model_sha256` is read from the card."""

    name: str
    model: Path
    model_sha256: str
    kind: str = "fasttext"
    mode: Literal["annotate", "filter"] = "annotate"
    min_score: float | None = None
    thresholds: tuple[ScoreThreshold, ...] = ()
    domains: tuple[str, ...] = ()

    @classmethod
    def from_table(
        cls, where: str, name: str, table: dict[str, Any], base_dir: Path, error: type[Exception] = ValueError
    ) -> ScorerConfig:
        """Check a `[scorers.<name>]` table and its classifier folder (card and model sha256) before any work.

        Args:
            where: "<file>: [scorers.<name>]" for messages.
            base_dir: the stage file's folder, which a relative `model` hangs from.
            error: the exception class the caller's command turns into a one-line error.
        """
        hints = {
            "model": str,
            "mode": Literal["annotate", "filter"],
            "min_score": float,
            "thresholds": list[ScoreThreshold],
            "domains": list[str],
        }
        check_table(where, table, hints, error)
        if not _NAME_RE.match(name):
            raise error(f"{where}: scorer name {name!r} must be lower-case letters, digits and _ (a column key)")
        if "model" not in table:
            raise error(f"{where}: 'model' (a classifier folder from `python -m flows.classify train`) is required")
        model = (base_dir / table["model"]).resolve()
        try:
            card = read_card(model)
        except CardError as e:
            raise error(f"{where} model = {table['model']!r}: {e}") from e
        try:
            thresholds = tuple(ScoreThreshold(**t) for t in table.get("thresholds", []))
        except TypeError:
            raise error(f"{where} thresholds: every entry needs min_score (and a domain, a lang or both)") from None
        for t in [*thresholds, ScoreThreshold(table.get("min_score", 0.0))]:
            if not 0.0 <= t.min_score <= 1.0:
                raise error(f"{where} min_score = {t.min_score!r}: a score is a probability, in [0, 1]")
            if t.domain is not None and t.domain not in DOMAINS:
                raise error(f"{where} thresholds: domain = {t.domain!r}: unknown; known: {list(DOMAINS)}")
        domains = tuple(table.get("domains", ()))
        if set(domains) - set(DOMAINS):
            raise error(f"{where} domains = {list(domains)!r}: must be drawn from {list(DOMAINS)}")
        mode = table.get("mode", "annotate")
        if mode == "filter" and "min_score" not in table and not thresholds:
            raise error(f'{where}: mode = "filter" needs min_score or [[scorers.{name}.thresholds]]')
        if mode == "annotate" and ("min_score" in table or thresholds):
            raise error(f'{where}: min_score and thresholds drop documents only with mode = "filter"')
        return cls(name, model, card["model_sha256"], card["kind"], mode, table.get("min_score"), thresholds, domains)

    def threshold_for(self, domain: str, lang: str | None) -> float | None:
        """The minimum score of a document of `domain` and `lang` (None: no threshold covers it, it is kept)."""
        for entry_domain, entry_lang in ((domain, lang), (None, lang), (domain, None)):
            for t in self.thresholds:
                if t.domain == entry_domain and t.lang == entry_lang and (t.domain or t.lang):
                    return t.min_score
        return self.min_score

    def fingerprint(self) -> dict[str, Any]:
        """What decides the scores and drops (the step's fingerprint): the model's bytes, not its folder."""
        return {
            "name": self.name,
            "model_sha256": self.model_sha256,
            "kind": self.kind,
            "mode": self.mode,
            "min_score": self.min_score,
            "domains": list(self.domains),
            "thresholds": [[t.domain, t.lang, t.min_score] for t in self.thresholds],
        }
