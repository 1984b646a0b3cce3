"""Gopher quality rules (Rae et al. 2021, arXiv 2112.11446, appendix A1.1), decisions identical to datatrove
0.10's `GopherQualityFilter`; reasons are datatrove's (`gopher_short_doc`) with the prefix `gopher_quality_`.

Gopher's stop-word check runs for English (Gopher's list, as FineWeb) and, with `per_language_thresholds`, for the
languages of `filters.language_thresholds` (FineWeb-2's lists and word-length / alphabetic-word thresholds, measured
on words of each language's own segmenter: a Chinese word is 1-2 characters, a Malayalam one often 15); a language
with neither skips it.

One check is ours, for the scripts whose words a dictionary segmenter finds (`filters.segmenters`: ICU for Chinese,
Japanese, Thai, Lao, Khmer, Myanmar): ICU's dictionary engine joins the letters of known words and leaves a letter it
cannot place as a word of one character, so character soup (shuffled text, keyboard mash) comes out as single
characters. Gopher's word rules cannot see that (single characters include stop words: 的, の, Myanmar's က and မ),
so `max_single_char_word_ratio` bounds the share of alphabetic words that are one character
(`gopher_quality_single_char_words`). Limits, from text that pip packages ship: Chinese and Japanese prose
(MMATH's problems, CPython's CJK samples, spaCy's examples) has at most 0.56, shuffled 0.92; Thai, Lao, Khmer and
Myanmar prose at most 0.06 and lists of transliterated foreign names (CLDR's, which the dictionaries do not know)
0.13, Myanmar keyboard mash 0.47. Korean (mecab-ko's morphemes) counts the Hangul morphemes that are a lone syllable
of a word, leaving out particles and endings (one syllable by nature: 의, 는, 다): mecab-ko reads a syllable it cannot
place in a word as a one-syllable noun or determiner. Korean prose (85 pages: konlpy's constitution and bills, MMATH's
problems, the UDHR of ../shared) has at most 0.33 (a bill's "제1조 제2항 제3호": 제 and 호 are one syllable), the same
pages shuffled at least 0.40. Other space-separated scripts (English among them) have no limit; there, a stop word of
one letter of an alphabet (FineWeb-2's Russian и, в, с; Spanish y, a) does not count towards `min_stop_words`, since
character soup of the language's letters forms it by chance (Gopher's English words are all longer).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

from filters.base import FilterResult
from filters.lang_codes import normalize_lang
from filters.prose_filter import ProseFilter
from filters.segmenters import KoreanMorphemeTokenizer
from filters.text_features import TextFeatures, tokenizer_for
from schemas import Document

# Gopher (Rae et al. 2021, arXiv 2112.11446, appendix A1) stop words, as in datatrove.
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

# Language -> most alphabetic words of one character (module docstring: where the limits come from).
_HAN_KANA_LIMIT = 0.8  # a Han character or kana is often a word by itself
_SOUTHEAST_ASIAN_LIMIT = 0.3  # a Thai, Lao, Khmer or Myanmar word is several letters
_KOREAN_LIMIT = 0.36  # lone syllables among Hangul morphemes, between prose's 0.33 and shuffled text's 0.40
SINGLE_CHAR_WORD_LIMITS: Mapping[str, float] = MappingProxyType(
    dict.fromkeys(("zh", "yue", "wuu", "lzh", "ja"), _HAN_KANA_LIMIT)
    | dict.fromkeys(("th", "lo", "km", "my"), _SOUTHEAST_ASIAN_LIMIT)
    | {"ko": _KOREAN_LIMIT}
)

_PUNCTUATION_SET: frozenset[str] | None = None


def _punctuation_set() -> frozenset[str]:
    global _PUNCTUATION_SET
    if _PUNCTUATION_SET is None:
        from datatrove.utils.text import PUNCTUATION_SET

        _PUNCTUATION_SET = frozenset(PUNCTUATION_SET)
    return _PUNCTUATION_SET


class GopherQuality(ProseFilter):
    """Gopher quality rules (Rae et al. 2021, arXiv 2112.11446, appendix A1.1), as datatrove.

    Args:
        min_doc_words / max_doc_words: words that are not only punctuation (50 / 100,000).
        min_avg_word_length / max_avg_word_length: mean length of those words (3 / 10).
        max_symbol_word_ratio: "#" and ellipses per word (0.1).
        max_bullet_lines_ratio: lines starting with a bullet (0.9).
        max_ellipsis_lines_ratio: lines ending with an ellipsis (0.3).
        min_alpha_words_ratio: words with an alphabetic character (0.8; datatrove's `max_non_alpha_words_ratio`).
        max_single_char_word_ratio: language (ISO code) -> most alphabetic words that are one character, for the
            scripts a dictionary segments (default `SINGLE_CHAR_WORD_LIMITS`; None turns it off).
        min_stop_words: distinct stop words required (2), for languages in `stop_words` only.
        stop_words: language -> stop words; default English Gopher list only. A language named here keeps this
            list even when the per-language table has one.
        language: tokenizer and stop-word language; None follows `doc.lang`.
        per_language_thresholds: languages in `filters.language_thresholds` use their row's word lengths,
            alphabetic-word ratio and stop words instead of the values above (English has no row).
    """

    name = "gopher_quality"
    domains = frozenset({"web", "stem"})
    TABLE_KEYS = {
        "min_avg_word_length": "min_avg_word_length",
        "max_avg_word_length": "max_avg_word_length",
        "min_alpha_words_ratio": "max_non_alpha_words_ratio",  # datatrove's name for the minimum share
    }

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        max_single_char_word_ratio: Mapping[str, float] | None = SINGLE_CHAR_WORD_LIMITS,
        min_stop_words: int | None = 2,
        stop_words: dict[str, list[str]] | None = None,
        language: str | None = None,
        per_language_thresholds: bool = True,
    ) -> None:
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        limits = dict(max_single_char_word_ratio or {})
        bad = {lang: v for lang, v in limits.items() if not isinstance(v, int | float) or not 0 < v <= 1}
        if bad:
            raise ValueError(f"max_single_char_word_ratio: ratios must be in (0, 1], got {bad}")
        self.max_single_char_word_ratio = limits
        self.min_stop_words = min_stop_words
        sw = {"en": list(GOPHER_STOP_WORDS)} if stop_words is None else stop_words
        self.stop_words = {lang: frozenset(words) for lang, words in sw.items()}
        self.language = language
        self.per_language_thresholds = per_language_thresholds
        if per_language_thresholds:
            from filters.language_thresholds import load_table

            load_table()

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        text = doc.text
        feat = features.prose(doc, self.language)
        p = self.params_for(feat.lang)  # this filter with the language's thresholds
        words = feat.words
        n_words = len(words)
        punct = _punctuation_set()
        lengths = [len(w) for w in words if not punct.issuperset(w)]
        n = len(lengths)
        if p.min_doc_words and n < p.min_doc_words:
            return False, "gopher_quality_short_doc", float(n)
        if p.max_doc_words and n > p.max_doc_words:
            return False, "gopher_quality_long_doc", float(n)
        if not n_words:
            return False, "gopher_quality_short_doc", 0.0  # datatrove divides by zero here
        avg = sum(lengths) / n if n else float("nan")
        if p.min_avg_word_length and avg < p.min_avg_word_length:
            return False, "gopher_quality_below_avg_threshold", avg
        if p.max_avg_word_length and avg > p.max_avg_word_length:
            return False, "gopher_quality_above_avg_threshold", avg
        if p.max_symbol_word_ratio:
            ratio = text.count("#") / n_words
            if ratio > p.max_symbol_word_ratio:
                return False, "gopher_quality_too_many_hashes", ratio
            ratio = (text.count("...") + text.count("…")) / n_words
            if ratio > p.max_symbol_word_ratio:
                return False, "gopher_quality_too_many_ellipsis", ratio
        lines = text.splitlines() or [""]
        if p.max_bullet_lines_ratio:
            ratio = sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines)
            if ratio > p.max_bullet_lines_ratio:
                return False, "gopher_quality_too_many_bullets", ratio
        if p.max_ellipsis_lines_ratio:
            ratio = sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines)
            if ratio > p.max_ellipsis_lines_ratio:
                return False, "gopher_quality_too_many_end_ellipsis", ratio
        if p.min_alpha_words_ratio:
            ratio = sum(any(c.isalpha() for c in w) for w in words) / n_words
            if ratio < p.min_alpha_words_ratio:
                return False, "gopher_quality_below_alpha_threshold", ratio
        limit = self.max_single_char_word_ratio.get(normalize_lang(feat.lang) or "")
        if limit is not None:
            tok = tokenizer_for(feat.lang).tok
            if isinstance(tok, KoreanMorphemeTokenizer):
                ratio = tok.lone_syllable_share(text)
            else:
                alpha = [w for w in words if w.isalpha() or any(c.isalpha() for c in w)]
                ratio = sum(len(w) == 1 for w in alpha) / max(len(alpha), 1)
            if ratio > limit:
                return False, "gopher_quality_single_char_words", ratio
        stop = p._stop_words(feat.lang)
        if p.min_stop_words and stop:
            if not text.isascii() and not unicodedata.is_normalized("NFC", text):
                # stop-word lists are NFC; decomposed text (a Vietnamese "của" as u + combining hook) must match too
                words = [unicodedata.normalize("NFC", w) for w in words]
            found_words = stop.intersection(words)
            if not tokenizer_for(feat.lang).segments_words:
                found_words = {w for w in found_words if not _one_letter_of_an_alphabet(w)}
            found = len(found_words)
            if found < p.min_stop_words:
                return False, "gopher_quality_enough_stop_words", float(found)
        return True

    def _stop_words(self, lang: str) -> frozenset[str] | None:
        """The stop words of `lang`: the constructor's list, else the per-language table's (None: no check)."""
        stop = self.stop_words.get(lang)
        if stop is None and self.per_language_thresholds:
            from filters.language_thresholds import thresholds_for

            row = thresholds_for(lang)
            stop = row.stopwords if row is not None else None
        return stop


_ALPHABETS = ("LATIN", "CYRILLIC", "GREEK")


def _one_letter_of_an_alphabet(word: str) -> bool:
    """A one-letter word of an alphabet (Russian и, в, с; Spanish y, a): character soup of the language's letters
    forms it by chance, so it is no evidence of prose. In an abugida a letter is a syllable (Nepali र "and",
    Malayalam ഈ "this"): real function words that stay evidence. Gopher's English stop words are all longer."""
    return len(word) == 1 and unicodedata.name(word, "").startswith(_ALPHABETS)


# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("gopher_quality", f"gopher_{r}"): f"gopher_quality_{r}"
    for r in (
        "short_doc",
        "long_doc",
        "below_avg_threshold",
        "above_avg_threshold",
        "too_many_hashes",
        "too_many_ellipsis",
        "too_many_bullets",
        "too_many_end_ellipsis",
        "below_alpha_threshold",
        "enough_stop_words",
    )
}
