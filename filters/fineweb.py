"""FineWeb's own line rules (Penedo et al. 2024, arXiv 2406.17557, section 3.3.3), decisions identical to
datatrove 0.10's `FineWebQualityFilter`.

FineWeb's words-per-newline check re-tokenizes (after C4 removed lines) only when a whitespace-split lower
bound on the word count cannot decide it.
"""

from __future__ import annotations

import functools

from filters.base import FilterResult
from filters.lang_codes import normalize_lang
from filters.prose_filter import ProseFilter
from filters.text_features import TextFeatures, find_duplicates, tokenizer_for
from schemas import Document

# Line endings that end a sentence in a script but are missing from datatrove's TERMINAL_PUNCTUATION (which has
# 。！？ । ॥ ؟ ۔ ။ ። ፧ ។ ៕ and 150 more): Ethiopic "፡፡" (two wordspaces, an old way of typing "።", as in the
# Tigrinya UDHR) and the Tibetan shads.
_TIBETAN_SHADS = ("།", "༎", "༑")
EXTRA_TERMINAL_PUNCTUATION: dict[str, tuple[str, ...]] = {
    "am": ("፡፡",),
    "ti": ("፡፡",),
    "bo": _TIBETAN_SHADS,
    "dz": _TIBETAN_SHADS,
}


@functools.cache
def _terminal_punctuation(lang: str | None = None) -> tuple[str, ...]:
    from datatrove.utils.text import TERMINAL_PUNCTUATION

    return tuple(TERMINAL_PUNCTUATION) + EXTRA_TERMINAL_PUNCTUATION.get(normalize_lang(lang) or "", ())


class FineWebQuality(ProseFilter):
    """FineWeb's own line rules (Penedo et al. 2024, arXiv 2406.17557, section 3.3.3), as datatrove.

    Args:
        min_line_punct_ratio: lines ending in terminal punctuation (0.12).
        line_punct_exclude_zero: do not drop documents with no such line at all.
        max_short_line_ratio: lines of at most `short_line_length` characters (0.67 of lines, 30 chars).
        short_line_length: see above.
        max_char_dup_ratio: characters in duplicated lines / characters (0.01).
        max_newline_ratio: newlines per word (0.3, "list_ratio").
        stop_chars: line endings counted as punctuation; default datatrove's TERMINAL_PUNCTUATION (with
            `EXTRA_TERMINAL_PUNCTUATION` for the document's language).
        language: tokenizer language; None follows `doc.lang`.
        per_language_thresholds: languages in `filters.language_thresholds` use their row's punctuated-line and
            newline ratios and FineWeb-2's duplicated-character ratio (0.1) and no short-line rule (a line of 30
            characters is a whole sentence in Chinese) instead of the values above.
    """

    name = "fineweb"
    domains = frozenset({"web", "stem"})
    TABLE_KEYS = {
        "min_line_punct_ratio": "line_punct_thr",
        "max_newline_ratio": "new_line_ratio",
        "max_char_dup_ratio": "char_duplicates_ratio",
        "max_short_line_ratio": "short_line_thr",
    }

    def __init__(
        self,
        min_line_punct_ratio: float | None = 0.12,
        line_punct_exclude_zero: bool = False,
        max_short_line_ratio: float | None = 0.67,
        short_line_length: int = 30,
        max_char_dup_ratio: float | None = 0.01,
        max_newline_ratio: float | None = 0.3,
        stop_chars: tuple[str, ...] | None = None,
        language: str | None = None,
        per_language_thresholds: bool = True,
    ) -> None:
        self.min_line_punct_ratio = min_line_punct_ratio
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.max_short_line_ratio = max_short_line_ratio
        self.short_line_length = short_line_length
        self.max_char_dup_ratio = max_char_dup_ratio
        self.max_newline_ratio = max_newline_ratio
        self.stop_chars = tuple(stop_chars) if stop_chars is not None else None
        self.language = language
        self.per_language_thresholds = per_language_thresholds
        if per_language_thresholds:
            from filters.language_thresholds import load_table

            load_table()

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return False, "fineweb_empty"
        feat = features.prose(doc, self.language)  # words are computed only when asked for
        p = self.params_for(feat.lang)  # this filter with the language's thresholds
        stop = p.stop_chars or _terminal_punctuation(feat.lang)
        if p.min_line_punct_ratio is not None:
            ratio = sum(1 for line in lines if line.endswith(stop)) / len(lines)
            if ratio < p.min_line_punct_ratio and not (ratio == 0 and p.line_punct_exclude_zero):
                return False, "fineweb_line_punct_ratio", ratio
        if p.max_short_line_ratio is not None:
            ratio = sum(1 for line in lines if len(line) <= p.short_line_length) / len(lines)
            if ratio > p.max_short_line_ratio:
                return False, "fineweb_short_line_ratio", ratio
        if p.max_char_dup_ratio is not None:
            ratio = find_duplicates(lines)[1] / len(text.replace("\n", ""))
            if ratio > p.max_char_dup_ratio:
                return False, "fineweb_char_dup_ratio", ratio
        if p.max_newline_ratio is not None:
            newlines = text.count("\n")
            # Every whitespace-separated chunk yields at least one token: a lower bound on the word count
            # that decides most documents without tokenizing (again, after C4 removed lines).
            if not tokenizer_for(feat.lang).chunk_local or newlines / len(text.split()) > p.max_newline_ratio:
                ratio = newlines / max(len(feat.words), 1)  # a text of zero-width spaces has no word
                if ratio > p.max_newline_ratio:
                    return False, "fineweb_list_ratio", ratio
        return True


# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("fineweb", r): f"fineweb_{r}"
    for r in ("empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")
}
