"""FineWeb's own line rules (Penedo et al. 2024, arXiv 2406.17557, section 3.3.3), decisions identical to
datatrove 0.10's `FineWebQualityFilter`.

FineWeb's words-per-newline check re-tokenizes (after C4 removed lines) only when a whitespace-split lower
bound on the word count cannot decide it.
"""

from __future__ import annotations

from filters.base import FilterResult
from filters.text_features import ProseFilter, TextFeatures, find_duplicates, tokenizer_for
from schemas import Document

_TERMINAL: tuple[str, ...] | None = None


def _terminal_punctuation() -> tuple[str, ...]:
    global _TERMINAL
    if _TERMINAL is None:
        from datatrove.utils.text import TERMINAL_PUNCTUATION

        _TERMINAL = tuple(TERMINAL_PUNCTUATION)
    return _TERMINAL


class FineWebQuality(ProseFilter):
    """FineWeb's own line rules (Penedo et al. 2024, arXiv 2406.17557, section 3.3.3), as datatrove.

    Args:
        min_line_punct_ratio: lines ending in terminal punctuation (0.12).
        line_punct_exclude_zero: do not drop documents with no such line at all.
        max_short_line_ratio: lines of at most `short_line_length` characters (0.67 of lines, 30 chars).
        short_line_length: see above.
        max_char_dup_ratio: characters in duplicated lines / characters (0.01).
        max_newline_ratio: newlines per word (0.3, "list_ratio").
        stop_chars: line endings counted as punctuation; default datatrove's TERMINAL_PUNCTUATION.
        language: tokenizer language; None follows `doc.lang`.
    """

    name = "fineweb"
    domains = frozenset({"web", "stem"})

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
    ) -> None:
        self.min_line_punct_ratio = min_line_punct_ratio
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.max_short_line_ratio = max_short_line_ratio
        self.short_line_length = short_line_length
        self.max_char_dup_ratio = max_char_dup_ratio
        self.max_newline_ratio = max_newline_ratio
        self.stop_chars = tuple(stop_chars) if stop_chars is not None else None
        self.language = language

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return False, "fineweb_empty"
        stop = self.stop_chars or _terminal_punctuation()
        if self.min_line_punct_ratio is not None:
            ratio = sum(1 for line in lines if line.endswith(stop)) / len(lines)
            if ratio < self.min_line_punct_ratio and not (ratio == 0 and self.line_punct_exclude_zero):
                return False, "fineweb_line_punct_ratio", ratio
        if self.max_short_line_ratio is not None:
            ratio = sum(1 for line in lines if len(line) <= self.short_line_length) / len(lines)
            if ratio > self.max_short_line_ratio:
                return False, "fineweb_short_line_ratio", ratio
        if self.max_char_dup_ratio is not None:
            ratio = find_duplicates(lines)[1] / len(text.replace("\n", ""))
            if ratio > self.max_char_dup_ratio:
                return False, "fineweb_char_dup_ratio", ratio
        if self.max_newline_ratio is not None:
            newlines = text.count("\n")
            # Every whitespace-separated chunk yields at least one token: a lower bound on the word count
            # that decides most documents without tokenizing (again, after C4 removed lines).
            feat = features.prose(doc, self.language)
            if not tokenizer_for(feat.lang).chunk_local or newlines / len(text.split()) > self.max_newline_ratio:
                ratio = newlines / len(feat.words)
                if ratio > self.max_newline_ratio:
                    return False, "fineweb_list_ratio", ratio
        return True


# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("fineweb", r): f"fineweb_{r}" for r in ("empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")
}
