"""Quality rules for long-form works (the `books` domain): Gopher's document rules, measured the way a book needs.

Gopher's quality filter (Rae et al. 2021, arXiv 2112.11446, appendix A) and the line rules of C4 (Raffel et al.
2020) and FineWeb (Penedo et al. 2024, arXiv 2406.17557) were made for web pages. On books they misfire: Gopher
caps a document at 100,000 words (a novel has more) and counts spaCy tokens, where a play's punctuation
("Ham.", "--", "&") pushes the share of words with a letter under 80%; FineWeb's "lines ending in punctuation"
rule and C4's terminal-punctuation rule reject verse, whose lines end in a letter. Web keeps those rules; this
filter keeps what still separates a book from garbage (an OCR dump, a table, a page repeated), on whitespace
words as in the Gopher paper, with no length cap.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

from filters.base import Filter, FilterResult
from schemas import Document

__all__ = ["BooksQuality"]

_STRIP = string.punctuation + "“”‘’«»—–…¿¡"


def _check_ratio(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
        raise ValueError(f"{name} must be a number in [0, 1] or absent, got {value!r}")


class BooksQuality(Filter):
    """Drop a long-form work that is too short, not words, symbol soup or one passage repeated.

    Checks, in order (each off with None):
    - fewer than `min_words` whitespace words: `books_quality_too_short`;
    - mean word length (punctuation stripped) outside [`min_avg_word_length`, `max_avg_word_length`]
      (Gopher's 3-10): `books_quality_avg_word_length`;
    - share of words with a letter below `min_alpha_words_ratio` (Gopher's 0.8, counted on whitespace words):
      `books_quality_alpha_words`;
    - "#" or ellipses per word above `max_symbol_word_ratio` (Gopher's 0.1): `books_quality_symbols`;
    - share of characters in repeated lines, counting only lines of at least `min_dup_line_chars` characters,
      above `max_dup_line_chars_ratio`: `books_quality_dup_lines`. Gopher's 0.2 on all lines would drop every
      play (speaker tags, "Exit.", "Enter ..." repeat by design) and any poem with a refrain.

    Args:
        min_words: fewest whitespace words (200: a sonnet sequence or a short poem passes, a stub does not).
        min_avg_word_length, max_avg_word_length: Gopher's bounds on the mean word length.
        min_alpha_words_ratio: Gopher's share of words containing a letter.
        max_symbol_word_ratio: Gopher's "#" and "..." per word.
        max_dup_line_chars_ratio: share of characters in lines that occur more than once.
        min_dup_line_chars: shorter lines (speaker tags, stage directions) are not counted as repeats.
        domains: document domains this filter applies to (default books).
    """

    name = "books_quality"

    def __init__(
        self,
        min_words: int | None = 200,
        min_avg_word_length: float | None = 3.0,
        max_avg_word_length: float | None = 10.0,
        min_alpha_words_ratio: float | None = 0.8,
        max_symbol_word_ratio: float | None = 0.1,
        max_dup_line_chars_ratio: float | None = 0.3,
        min_dup_line_chars: int = 30,
        domains: Sequence[str] | None = ("books",),
    ) -> None:
        for key, value in (("min_words", min_words), ("min_dup_line_chars", min_dup_line_chars)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{key} must be an integer >= 0, got {value!r}")
        for key, value in (("min_avg_word_length", min_avg_word_length), ("max_avg_word_length", max_avg_word_length)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{key} must be a number >= 0 or absent, got {value!r}")
        _check_ratio("min_alpha_words_ratio", min_alpha_words_ratio)
        _check_ratio("max_symbol_word_ratio", max_symbol_word_ratio)
        _check_ratio("max_dup_line_chars_ratio", max_dup_line_chars_ratio)
        self.min_words = min_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_dup_line_chars_ratio = max_dup_line_chars_ratio
        self.min_dup_line_chars = min_dup_line_chars
        self.domains = frozenset(domains) if domains is not None else None

    def filter(self, doc: Document) -> FilterResult:
        text = doc.text
        words = text.split()
        n = len(words)
        if self.min_words is not None and n < self.min_words:
            return False, "books_quality_too_short", float(n)
        if not n:
            return False, "books_quality_too_short", 0.0
        stripped = [w.strip(_STRIP) for w in words]
        lengths = [len(w) for w in stripped if w]
        avg = sum(lengths) / len(lengths) if lengths else 0.0
        if self.min_avg_word_length is not None and avg < self.min_avg_word_length:
            return False, "books_quality_avg_word_length", avg
        if self.max_avg_word_length is not None and avg > self.max_avg_word_length:
            return False, "books_quality_avg_word_length", avg
        if self.min_alpha_words_ratio is not None:
            ratio = sum(any(c.isalpha() for c in w) for w in words) / n
            if ratio < self.min_alpha_words_ratio:
                return False, "books_quality_alpha_words", ratio
        if self.max_symbol_word_ratio is not None:
            ratio = max(text.count("#"), text.count("...") + text.count("…")) / n
            if ratio > self.max_symbol_word_ratio:
                return False, "books_quality_symbols", ratio
        if self.max_dup_line_chars_ratio is not None:
            lines = [ln.strip() for ln in text.splitlines()]
            long_lines = Counter(ln for ln in lines if len(ln) >= self.min_dup_line_chars)
            dup_chars = sum(len(ln) * (c - 1) for ln, c in long_lines.items() if c > 1)  # copies after the first
            ratio = dup_chars / max(sum(len(ln) for ln in lines), 1)
            if ratio > self.max_dup_line_chars_ratio:
                return False, "books_quality_dup_lines", ratio
        return True
