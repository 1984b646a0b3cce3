"""Toxicity classifier: alt-profanity-check 1.9.1's TF-IDF vectorizer and calibrated linear SVM, trained on
English offensive-language data, read from the package (sha256-checked through `core.assets`) and run in numpy
(filters/toxicity_model.py). English only.

`Toxicity.filter_batch` scores a whole batch with one vectorizer and model call.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from core.assets import asset_path
from filters.base import Filter, FilterResult
from filters.lang_codes import normalize_lang
from filters.text_features import TextFeatures
from filters.toxicity_model import ToxicityModel
from schemas import Document

_PROFANITY_CHECK_INSTALL = "pip install alt-profanity-check==1.9.1"


@lru_cache(maxsize=1)
def load_toxicity_model() -> ToxicityModel:
    """alt-profanity-check's vectorizer and calibrated model as plain arrays (filters/toxicity_model.py: no
    scikit-learn import, ~85 MiB and ~1 s less in every process that scores), from its sha256-checked files."""
    try:
        return ToxicityModel.from_pickles(
            asset_path("profanity_check.vectorizer"), asset_path("profanity_check.model")
        )
    except ValueError as e:
        raise RuntimeError(f"{e}; install the version this code reads: `{_PROFANITY_CHECK_INSTALL}`") from e


def toxicity_scores(texts: Sequence[str]) -> list[float]:
    """Probability that each text is offensive, from alt-profanity-check's model (English)."""
    return load_toxicity_model().scores(texts)


class Toxicity(Filter):
    """Drop documents whose offensive-language probability exceeds `max_score`.

    Model: alt-profanity-check's TF-IDF + calibrated linear SVM (English; trained on short comments and tweets).
    TF-IDF is L2-normalised over the whole text, so one slur in a long page scores low; `chunk_chars` scores
    line-aligned chunks instead and keeps the maximum. The score is recorded in the lineage row.
    Default `max_score` 0.8 was chosen on the Davidson et al. (ICWSM 2017) tweets: see BENCHMARKS.md.

    Args:
        max_score: drop when the score is above this; None records nothing and keeps everything.
        languages: `doc.lang` values scored (default English only: the model is English); None: all documents.
        chunk_chars: if set, score chunks of about this many characters and use the highest.
        max_chars: score at most this many leading characters (bounds the cost on huge documents); None: all.
        domains: document domains this filter applies to (default web).
    """

    name = "toxicity"

    def __init__(
        self,
        max_score: float | None = 0.8,
        languages: Sequence[str] | None = ("en",),
        chunk_chars: int | None = None,
        max_chars: int | None = 100_000,
        domains: Sequence[str] | None = ("web",),
    ) -> None:
        if max_score is not None and not 0.0 <= max_score <= 1.0:
            raise ValueError(f"max_score must be in [0, 1], got {max_score}")
        if chunk_chars is not None and chunk_chars <= 0:
            raise ValueError(f"chunk_chars must be positive, got {chunk_chars}")
        self.max_score = max_score
        self.languages = frozenset(languages) if languages is not None else None
        self.chunk_chars = chunk_chars
        self.max_chars = max_chars
        self.domains = frozenset(domains) if domains is not None else None
        load_toxicity_model()  # fail at construction, not mid-run, when the package is missing

    def _chunks(self, text: str) -> list[str]:
        """The texts scored for `text`: none when blank, else the text or its line-aligned chunks."""
        if self.max_chars is not None:
            text = text[: self.max_chars]
        if not text.strip():
            return []
        if not self.chunk_chars or len(text) <= self.chunk_chars:
            return [text]
        chunks, cur, size = [], [], 0
        for line in text.splitlines(keepends=True):
            cur.append(line)
            size += len(line)
            if size >= self.chunk_chars:
                chunks.append("".join(cur))
                cur, size = [], 0
        if cur:
            chunks.append("".join(cur))
        return chunks

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Offensive-language probability of each text (max over its chunks), with one model call in all."""
        chunks = [self._chunks(t) for t in texts]
        flat = toxicity_scores([c for cs in chunks for c in cs])  # each row is scored on its own: same values
        out, pos = [], 0
        for cs in chunks:
            out.append(max(flat[pos : pos + len(cs)]) if cs else 0.0)
            pos += len(cs)
        return out

    def score(self, text: str) -> float:
        """Offensive-language probability of `text` (max over chunks when `chunk_chars` is set)."""
        return self.scores([text])[0]

    def filter(self, doc: Document) -> FilterResult:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: Sequence[Document], features: TextFeatures | None = None) -> list[FilterResult]:
        """Decisions for `docs`, scoring all documents of the model's languages with one model call."""
        if self.max_score is None:
            return [True] * len(docs)
        scored = [i for i, d in enumerate(docs) if self.languages is None or normalize_lang(d.lang) in self.languages]
        results: list[FilterResult] = [True] * len(docs)
        for i, s in zip(scored, self.scores([docs[i].text for i in scored])):
            if s > self.max_score:
                results[i] = (False, "toxicity_score", s)
        return results
