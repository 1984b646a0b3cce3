"""Scorers in the filter chain: a trained classifier or a perplexity scorer (`[scorers.<name>]`, scoring/config.py) that writes its score
into each document's `scores` column and, in filter mode, drops a document below its threshold
(`scorer_<name>_below_min`, the score in the lineage row). A multi-class classifier writes one score per class,
`<name>.<class>`, and in filter mode thresholds the probability of its `class`.

They run after every filter and before the redacting modifiers (pii, secrets), so that what they score is what the
filters judged, and nothing is redacted in a document a scorer drops. One model call per batch. A scorer with a
`sample` skips the documents outside it (no key in `scores`), and its model is loaded when the first document it
scores arrives: a process that scores nothing (a small run, a worker whose units hold no sampled document) never
pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from filters.base import Filter, FilterResult, Modifier, Step
from filters.text_features import TextFeatures
from schemas import Document
from scoring.config import ScorerConfig

if TYPE_CHECKING:
    from scoring.embedding import EmbeddingScorer
    from scoring.perplexity import PerplexityScorer
    from scoring.scorer import FastTextScorer


class ScorerFilter(Filter):
    """Score each document with one classifier; drop below the threshold in filter mode.

    Args:
        config: a checked `[scorers.<name>]` table; the model is loaded (and checked against its card) here.
    """

    def __init__(self, config: ScorerConfig) -> None:
        self.config = config
        self.name = f"scorer_{config.name}"
        self.domains = frozenset(config.domains) if config.domains else None
        # Every document is scored: the model loads now, so that one that fails to load fails before any document.
        self._loaded = self._load() if config.sample is None else None

    def _load(self) -> FastTextScorer | EmbeddingScorer | PerplexityScorer:
        if self.config.kind == "perplexity":
            from scoring.perplexity import PerplexityScorer

            engine = (list(self.config.servers), self.config.served_model) if self.config.servers else None
            return PerplexityScorer(self.config.model, self.config.max_tokens, engine=engine)
        from scoring.scorer import load_classifier

        return load_classifier(self.config.model)

    @property
    def _scorer(self) -> FastTextScorer | EmbeddingScorer | PerplexityScorer:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def applies_to(self, doc: Document) -> bool:
        return super().applies_to(doc) and self.config.in_sample(doc.id)

    def filter(self, doc: Document) -> FilterResult:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: Sequence[Document], features: TextFeatures | None = None) -> list[FilterResult]:
        results: list[FilterResult] = []
        for doc, entries in zip(docs, self._score_entries([d.text for d in docs])):
            doc.scores = {**(doc.scores or {}), **entries}
            score = entries[self.config.score_key] if self.config.mode == "filter" else None
            minimum = self.config.threshold_for(doc.domain, doc.lang) if self.config.mode == "filter" else None
            results.append(
                (False, f"{self.name}_below_min", score)
                if minimum is not None and score is not None and score < minimum
                else True
            )
        return results

    def _score_entries(self, texts: list[str]) -> list[dict[str, float]]:
        """Each text's entries of the `scores` map: `{name: score}`, or `{name.class: probability}` for every class
        of a multi-class classifier (`ScorerConfig.classes`, read from its card; fastText or an embedding head)."""
        name = self.config.name
        if self.config.classes:
            return [{f"{name}.{c}": p for c, p in probs.items()} for probs in self._scorer.score_classes(texts)]
        return [{name: score} for score in self._scorer.score(texts)]


def with_scorers(chain: list[Step], scorers: Sequence[ScorerConfig]) -> list[Step]:
    """The chain with one `ScorerFilter` per scorer (in the order given) after its last filter, before the
    modifiers that end it."""
    if not scorers:
        return chain
    last_filter = max((i for i, step in enumerate(chain) if not isinstance(step, Modifier)), default=-1)
    return [*chain[: last_filter + 1], *(ScorerFilter(s) for s in scorers), *chain[last_filter + 1 :]]
