"""Gopher repetition removal (Rae et al. 2021, arXiv 2112.11446, table A1), decisions identical to datatrove
0.10's `GopherRepetitionFilter` with the same thresholds; reasons are datatrove's prefixed by `gopher_repetition_`
(see `DATATROVE_REASONS`)."""

from __future__ import annotations

import re
from collections import Counter
from itertools import accumulate

from filters.base import FilterResult
from filters.prose_filter import ProseFilter
from filters.text_features import TextFeatures, find_duplicates
from schemas import Document

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


class GopherRepetition(ProseFilter):
    """Gopher repetition removal (Rae et al. 2021, arXiv 2112.11446, table A1), as datatrove.

    Args:
        max_dup_para_ratio: duplicate paragraphs / paragraphs (0.3).
        max_dup_para_char_ratio: characters in duplicate paragraphs / characters (0.2).
        max_dup_line_ratio: duplicate lines / lines (0.3).
        max_dup_line_char_ratio: characters in duplicate lines / characters (0.2).
        top_n_grams: (n, max ratio) of characters in the most frequent n-gram (2: 0.2, 3: 0.18, 4: 0.16).
        dup_n_grams: (n, max ratio) of characters in repeated n-grams (5: 0.15 ... 10: 0.10).
        language: tokenizer language; None follows `doc.lang`.
        per_language_thresholds: languages in `filters.language_thresholds` use their row's duplicate-line ratio and
            n-gram ratios (FineWeb-2's, measured on each language's own words) instead of the values above.
    """

    name = "gopher_repetition"
    domains = frozenset({"web", "stem"})
    TABLE_KEYS = {"max_dup_line_ratio": "dup_line_frac", "top_n_grams": "top_n_grams", "dup_n_grams": "dup_n_grams"}

    def __init__(
        self,
        max_dup_para_ratio: float | None = 0.3,
        max_dup_para_char_ratio: float | None = 0.2,
        max_dup_line_ratio: float | None = 0.3,
        max_dup_line_char_ratio: float | None = 0.2,
        top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16)),
        dup_n_grams: tuple[tuple[int, float], ...] = (
            (5, 0.15),
            (6, 0.14),
            (7, 0.13),
            (8, 0.12),
            (9, 0.11),
            (10, 0.10),
        ),
        language: str | None = None,
        per_language_thresholds: bool = True,
    ) -> None:
        self.max_dup_para_ratio = max_dup_para_ratio
        self.max_dup_para_char_ratio = max_dup_para_char_ratio
        self.max_dup_line_ratio = max_dup_line_ratio
        self.max_dup_line_char_ratio = max_dup_line_char_ratio
        self.top_n_grams = tuple(tuple(x) for x in top_n_grams)
        self.dup_n_grams = tuple(tuple(x) for x in dup_n_grams)
        self.language = language
        self.per_language_thresholds = per_language_thresholds
        if per_language_thresholds:
            from filters.language_thresholds import load_table

            load_table()

    def decide(self, doc: Document, features: TextFeatures) -> FilterResult:
        text = doc.text
        if not text:
            return False, "gopher_repetition_empty"
        feat = features.prose(doc, self.language)
        p = self.params_for(feat.lang)  # this filter with the language's thresholds
        n_chars = len(text)
        paragraphs = _PARAGRAPHS.split(text.strip())
        dup, chars = find_duplicates(paragraphs)
        if p.max_dup_para_ratio and dup / len(paragraphs) > p.max_dup_para_ratio:
            return False, "gopher_repetition_dup_para_frac", dup / len(paragraphs)
        if p.max_dup_para_char_ratio and chars / n_chars > p.max_dup_para_char_ratio:
            return False, "gopher_repetition_dup_para_char_frac", chars / n_chars
        lines = _LINES.split(text)
        dup, chars = find_duplicates(lines)
        if p.max_dup_line_ratio and dup / len(lines) > p.max_dup_line_ratio:
            return False, "gopher_repetition_dup_line_frac", dup / len(lines)
        if p.max_dup_line_char_ratio and chars / n_chars > p.max_dup_line_char_ratio:
            return False, "gopher_repetition_dup_line_char_frac", chars / n_chars

        words = feat.words
        # NOTE: tokens never contain whitespace, so " ".join identity (datatrove) == tuple identity.
        ids: dict[str, int] = {}
        seq = [ids.setdefault(w, len(ids)) for w in words]
        lens = [len(w) for w in words]
        for n, max_ratio in p.top_n_grams:
            if len(words) < n:
                continue
            grams = list(zip(*(seq[i:] for i in range(n))))
            counts = Counter(grams)
            # most_common(1) keeps the first-inserted n-gram among ties, as Counter does in datatrove
            count = max(counts.values())
            gram = next(g for g, c in counts.items() if c == count)
            start = grams.index(gram)
            top_chars = (sum(lens[start : start + n]) + n - 1) * count
            if top_chars / n_chars > max_ratio:
                return False, f"gopher_repetition_top_{n}_gram", top_chars / n_chars
        joined = "".join(words)  # the n-gram starting at word i is joined[offsets[i] : offsets[i + n]]
        offsets = list(accumulate(lens, initial=0))
        for n, max_ratio in p.dup_n_grams:
            repeated = self._all_duplicate_chars(joined, offsets, n)
            if repeated / n_chars > max_ratio:
                return False, f"gopher_repetition_duplicated_{n}_n_grams", repeated / n_chars
        return True

    @staticmethod
    def _all_duplicate_chars(joined: str, offsets: list[int], n: int) -> int:
        """datatrove's `find_all_duplicate`: greedy count of characters in repeated n-grams (joined with "").

        Args:
            joined: the words joined with "".
            offsets: where each word starts in `joined`, and its length at the end.
            n: words per n-gram.
        """
        # One slice of the joined words per n-gram: the same strings as "".join(words[i : i + n]), without the
        # list slice and the join (this loop ran six times per document, 5- to 10-grams).
        grams = [joined[a:b] for a, b in zip(offsets, offsets[n:])]
        if len(set(grams)) == len(grams):
            return 0  # no n-gram occurs twice: the greedy scan can never hit the seen set
        seen: set[str] = set()
        repeated, idx = 0, 0
        while idx < len(grams):
            g = grams[idx]
            if g in seen:
                repeated += len(g)
                idx += n
            else:
                seen.add(g)
                idx += 1
        return repeated


# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("gopher_repetition", r): f"gopher_repetition_{r}"
    for r in (
        "empty",
        "dup_para_frac",
        "dup_para_char_frac",
        "dup_line_frac",
        "dup_line_char_frac",
        "top_2_gram",
        "top_3_gram",
        "top_4_gram",
        *(f"duplicated_{n}_n_grams" for n in range(5, 11)),
    )
}
