"""The base class of the prose filters (Gopher repetition and quality, C4, FineWeb): a filter that judges a document
by the text features of its batch (`filters.text_features`) with the thresholds of the document's language
(`filters.language_thresholds`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar, Self

from filters.base import Filter, FilterResult
from filters.language_thresholds import thresholds_for
from filters.text_features import TextFeatures
from schemas import Document


class ProseFilter(Filter):
    """A filter that judges a document by its `ProseFeatures`: implement `decide(doc, features)`.

    `filter_batch` shares the batch's `TextFeatures` between the prose filters of a chain; `filter` on its own
    computes what it needs. `params_for(lang)` is the filter with the thresholds of `lang`'s row of
    `filters.language_thresholds` (attributes named in `TABLE_KEYS`) when `per_language_thresholds` is set.
    """

    language: str | None = None
    per_language_thresholds: bool = False
    # our attribute -> LanguageThresholds field
    TABLE_KEYS: ClassVar[dict[str, str]] = {}

    def params_for(self, lang: str) -> Self:
        """This filter, or a copy of it holding `lang`'s thresholds from the per-language table (cached)."""
        if not self.per_language_thresholds or not self.TABLE_KEYS:
            return self
        cache: dict[str, Self] = self.__dict__.setdefault("_params_by_lang", {})
        if lang not in cache:
            row = thresholds_for(lang)
            params = self
            if row is not None:
                params = copy.copy(self)
                for attr, field in self.TABLE_KEYS.items():
                    setattr(params, attr, getattr(row, field))
            cache[lang] = params
        return cache[lang]

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        raise NotImplementedError

    def filter(self, doc: Document) -> FilterResult:
        return self.decide(doc, TextFeatures())

    def filter_batch(self, docs: Sequence[Document], features: TextFeatures | None = None) -> list[FilterResult]:
        features = features if features is not None else TextFeatures()
        return [self.decide(doc, features) for doc in docs]
