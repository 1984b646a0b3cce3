"""Language identification: `LangId`, the chain's "langid" filter (the cascade, or fastText lid.176 alone).

`LangId(model="cascade")`, the default, reads the prose of a document (`filters.prose`) and asks lid.176 and
CLD3 (settled when they agree surely outside a confusable group), else py3langid and CLD3, then lingua when they
are unsure (`filters.lid_models`): 161 labels, ISO 639-1 else 639-3, with the script
where a language has two (zh-Hans/zh-Hant, sr-Cyrl/sr-Latn, uz-Latn/uz-Cyrl), per-language thresholds,
confusable groups recorded in the document's metadata, and mostly-math documents kept.

`LangId(model="lid176")` is `filters.lid176.FastTextLangId` (fastText lid.176 with datatrove's decision),
unchanged; it and `LID176_LABELS` are imported here too, so `from filters.langid import FastTextLangId` still works.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from filters import lid_thresholds
from filters.base import Filter, FilterResult
from filters.lid176 import LID176_LABELS, FastTextLangId
from filters.lid_models import LINGUA_HIGH_ACCURACY_BELOW
from schemas import DOMAINS, Document

__all__ = ["LID176_LABELS", "MODELS", "FastTextLangId", "LangId"]

logger = logging.getLogger(__name__)

MODELS = ("cascade", "lid176")


def _base(lang: str) -> str:
    return lang.split("-")[0]


class LangId(Filter):
    """Language ID for the chain: sets `doc.lang` / `doc.lang_score`, drops unwanted or unsure languages.

    `model = "cascade"` (default) reads the document's prose (`filters.prose`: no LaTeX, formulas, code, URLs or
    e-mail addresses), at most `max_chars` of it; lid.176 and CLD3 settle it when they agree surely on a language
    in no confusable group, else py3langid and CLD3 vote, asking lingua only when they disagree, are unsure or
    name a confusable group (`filters.lid_models.cascade`): 161 labels, ISO 639-1
    labels else 639-3, with the script for zh-Hans/zh-Hant, sr-Cyrl/sr-Latn, uz-Latn/uz-Cyrl.
    `model = "lid176"` is `FastTextLangId` unchanged: fastText lid.176 on the raw text, datatrove's decision.

    Decision (cascade), as datatrove's `LanguageFilter` with per-language thresholds: keep when the score is
    strictly above the language's threshold (`min_scores[lang]`, else `min_scores[base]` for "zh-Hans" -> "zh",
    else, for a document of `table_domains`, the language's row of `filters.lid_thresholds`, else `min_score`)
    and the language is wanted. A document that is mostly markup (the share of removed math,
    code and URLs is at least `min_markup_ratio`) is kept when its score is low: its little prose cannot be
    trusted to give a sure score, so it is not judged by it; `doc.metadata["langid"]["kept"]` says so.
    A prediction in a confusable group (bs/hr/sr, ms/id, nb/nn/da, ...) records `group`, `runner_up` and
    `runner_up_score` in `doc.metadata["langid"]`, so that a report can count them
    (`json_extract_string(metadata, '$.langid.group')`).

    Args:
        model: "cascade" or "lid176".
        languages: labels to keep ("zh" keeps zh-Hans and zh-Hant); None keeps every language. Must be labels the
            model can return.
        min_score: default threshold on the top score (0.65 as in FineWeb); None turns the check off.
        min_scores: per-language thresholds, e.g. {"bs": 0.5}; keys must be labels the model can return.
        table_domains: documents of these domains take, for a language `min_scores` does not name, the threshold of
            `filters/data/lid_thresholds.json` (FineWeb-2's median - std rule on the cascade's scores; English has
            none and keeps `min_score`); [] turns the table off. Cascade only; no effect when `min_score` is None.
            Web only by default: FineWeb-2 made the rule for web crawl, and on math and science documents the
            misses are English read as Latin at 0.66-0.84 (MMLU-STEM: 18 more of 7,156 STEM documents dropped).
        trust_source_lang: keep a source-provided `doc.lang` and skip the score check (as `FastTextLangId`).
        max_chars: prose characters the models read (cascade; cost does not grow with document length).
        min_markup_ratio: a document with at least this share of markup is not dropped for a low score (cascade);
            None turns the exemption off.
        lingua_high_accuracy_below: prose shorter than this many characters is read by lingua in high accuracy
            mode (cascade); 0 (default) reads everything in low accuracy mode (trigrams), which is as accurate from
            two sentences on. 200 suits a corpus of single sentences: lingua's test sentences 96.5% instead of
            95.4%, at ~30 MB and ~0.4 s per language per worker (the chain on 4,000 mixed-language documents:
            1,323 instead of 544 MB, 28.9 instead of 17.7 s).
    """

    name = "langid"
    domains = frozenset({"web", "stem", "books"})

    def __init__(
        self,
        model: str = "cascade",
        languages: Sequence[str] | None = None,
        min_score: float | None = 0.65,
        min_scores: dict[str, float] | None = None,
        table_domains: Sequence[str] = ("web",),
        trust_source_lang: bool = True,
        max_chars: int = 2000,
        min_markup_ratio: float | None = 0.5,
        lingua_high_accuracy_below: int = LINGUA_HIGH_ACCURACY_BELOW,
    ) -> None:
        from filters import lid_models

        if model not in MODELS:
            raise ValueError(f"model = {model!r}: unknown; choose one of {list(MODELS)}")
        known = lid_models.label_known if model == "cascade" else LID176_LABELS.__contains__
        for key, value in (("min_score", min_score), ("min_markup_ratio", min_markup_ratio)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
            ):
                raise ValueError(f"{key} = {value!r}: must be a number in [0, 1] or None")
        if languages is not None:
            if isinstance(languages, str) or not all(isinstance(x, str) for x in languages):
                raise ValueError(f"languages = {languages!r}: must be a list of language codes")
            bad = sorted(x for x in languages if not known(x))
            if bad:
                raise ValueError(f"languages: unknown language code(s) {bad} for model {model!r}")
        if isinstance(table_domains, str) or not all(x in DOMAINS for x in table_domains):
            raise ValueError(f"table_domains = {table_domains!r}: must be a list of domains from {list(DOMAINS)}")
        if min_scores is not None and not isinstance(min_scores, dict):
            raise ValueError(f"min_scores = {min_scores!r}: must be a table {{language = score}}")
        for lang, value in (min_scores or {}).items():
            if not known(lang):
                raise ValueError(f"min_scores.{lang}: unknown language code {lang!r} for model {model!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"min_scores.{lang} = {value!r}: must be a number in [0, 1]")
        if model == "lid176" and min_scores:
            raise ValueError(
                "min_scores: per-language thresholds need model = 'cascade' (lid176 keeps datatrove's rule)"
            )
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 100:
            raise ValueError(f"max_chars = {max_chars!r}: must be an integer >= 100")
        below = lingua_high_accuracy_below
        if isinstance(below, bool) or not isinstance(below, int) or below < 0:
            raise ValueError(f"lingua_high_accuracy_below = {below!r}: must be an integer >= 0 (0: low accuracy mode)")
        self.model = model
        self.languages = frozenset(languages) if languages is not None else None
        self.min_score = min_score
        self.min_scores = dict(min_scores or {})
        # Read (and checked) when built, so that a bad table stops the run before any work.
        self.table = lid_thresholds.min_scores() if model == "cascade" else {}
        self.table_domains = frozenset(table_domains)
        self.trust_source_lang = trust_source_lang
        self.max_chars = max_chars
        self.min_markup_ratio = min_markup_ratio
        self.lingua_high_accuracy_below = lingua_high_accuracy_below
        self._lid176 = FastTextLangId(languages, min_score, trust_source_lang) if model == "lid176" else None

    def threshold(self, lang: str, domain: str = "web") -> float | None:
        """The score `lang` must exceed: its own or its base language's ("zh" for "zh-Hans") from `min_scores`,
        else from the table (a document of `table_domains`), else `min_score` (None: no check)."""
        use_table = self.min_score is not None and domain in self.table_domains
        for table in (self.min_scores, self.table if use_table else {}):
            for key in (lang, _base(lang)):
                if key in table:
                    return table[key]
        return self.min_score

    def wanted(self, lang: str) -> bool:
        return self.languages is None or lang in self.languages or _base(lang) in self.languages

    def predict_batch(self, texts: Iterable[str]) -> list[tuple[Any, float]]:
        """(prediction, markup ratio) per text: `lid_models.Prediction` (cascade) or (lang, score) (lid176)."""
        from filters import lid_models
        from filters.prose import prose

        texts = list(texts)
        if self._lid176 is not None:
            return [(p, 0.0) for p in self._lid176.predict_batch(texts)]
        proses = [prose(text, self.max_chars) for text in texts]
        preds = lid_models.cascade_batch(
            [p.text for p in proses], lingua_high_accuracy_below=self.lingua_high_accuracy_below
        )
        return [(pred, p.markup_ratio) for pred, p in zip(preds, proses)]

    def decide(self, doc: Document, pred: Any, markup_ratio: float) -> FilterResult:
        """Record the cascade's prediction on `doc` and return the filter result."""
        from filters.lid_models import group_of

        lang, score = pred.lang, pred.score
        meta: dict[str, Any] = {}
        group = group_of(lang)
        if group:
            meta.update(
                group="/".join(sorted(group)),
                runner_up=pred.runner_up,
                runner_up_score=None if pred.runner_up_score is None else round(pred.runner_up_score, 4),
            )
        if self.trust_source_lang and doc.lang:
            # As FastTextLangId: a curated per-language source keeps its label and skips the score check.
            doc.lang_score = score if _base(lang) == _base(doc.lang) else None
            if meta:
                doc.metadata["langid"] = {"predicted": lang, **meta}
            return True if self.wanted(doc.lang) else (False, "langid_unwanted_language", score)
        doc.lang, doc.lang_score = lang, score
        threshold = self.threshold(lang, doc.domain)
        result: FilterResult = True
        if threshold is not None and score <= threshold:
            if self.min_markup_ratio is not None and markup_ratio >= self.min_markup_ratio:
                # Mostly math/code: the few words left cannot give a sure score; keep it, say why.
                meta.update(kept="mostly_markup", markup_ratio=round(markup_ratio, 3))
            else:
                result = (False, "langid_low_score", score)
        elif not self.wanted(lang):
            result = (False, "langid_unwanted_language", score)
        if meta:
            doc.metadata["langid"] = meta
        return result

    def filter(self, doc: Document) -> FilterResult:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: Sequence[Document], features: object = None) -> list[FilterResult]:
        """One decision per document (`run_chain` calls it once per batch); models load once per process."""
        if self._lid176 is not None:
            return self._lid176.filter_batch(docs, features)
        preds = self.predict_batch(d.text for d in docs)
        return [self.decide(d, pred, ratio) for d, (pred, ratio) in zip(docs, preds)]
