"""Per-language thresholds and stop words of the prose filters, FineWeb-2 style.

FineWeb-2 (Penedo et al. 2025, arXiv 2506.20920, section 4) tunes every filter per language: its thresholds were
chosen from statistics of each language's own web text, and it publishes them with stop words per language and
script. `data/language_thresholds.json` holds those of the languages our language ID names (written by
`scripts/fineweb2_thresholds.py`, which records the repository, commit, licence and every value changed with its
reason). English is not in it: it keeps FineWeb's (datatrove's) defaults, so its decisions stay identical to
datatrove's.

FineWeb-2 key -> our filter argument:

| FineWeb-2 | filter | argument |
|---|---|---|
| dup_line_frac, top_n_grams, dup_n_grams | gopher_repetition | max_dup_line_ratio, top_n_grams, dup_n_grams |
| line_punct_thr, new_line_ratio | fineweb | min_line_punct_ratio, max_newline_ratio |
| char_duplicates_ratio, short_line_thr (one value for all languages) | fineweb | max_char_dup_ratio, max_short_line_ratio |
| min/max_avg_word_length, max_non_alpha_words_ratio | gopher_quality | min/max_avg_word_length, min_alpha_words_ratio |
| stopwords (2 required, as FineWeb-2) | gopher_quality | stop_words |

Gopher's paragraph and line-character repetition checks (which FineWeb-2 switched off because trafilatura leaves
few paragraphs) keep Gopher's values in every language: they count characters, so they mean the same in any script.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from filters.lang_codes import normalize_lang

TABLE_PATH = Path(__file__).parent / "data" / "language_thresholds.json"


@dataclass(frozen=True)
class LanguageThresholds:
    """One language's row of the table (FineWeb-2's names; see the module docstring for where each goes)."""

    language: str
    config: str
    dup_line_frac: float
    top_n_grams: tuple[tuple[int, float], ...]
    dup_n_grams: tuple[tuple[int, float], ...]
    line_punct_thr: float
    new_line_ratio: float
    min_avg_word_length: float
    max_avg_word_length: float
    max_non_alpha_words_ratio: float
    stopwords: frozenset[str]
    char_duplicates_ratio: float
    short_line_thr: float | None

    def __post_init__(self) -> None:
        ratios = {
            "dup_line_frac": self.dup_line_frac,
            "max_non_alpha_words_ratio": self.max_non_alpha_words_ratio,
            "char_duplicates_ratio": self.char_duplicates_ratio,
            # FineWeb-2 writes -1 (never below) for languages whose lines it does not judge by punctuation
            "line_punct_thr": max(self.line_punct_thr, 0),
        }
        bad = {k: v for k, v in ratios.items() if not 0 <= v <= 1}
        # an n-gram ratio above 1 never drops (FineWeb-2 writes 1.112 for some languages with little data)
        bad |= {f"n_gram {n}": r for n, r in self.top_n_grams + self.dup_n_grams if r < 0 or n < 1}
        if bad:
            raise ValueError(f"{TABLE_PATH} [{self.language}]: ratios out of range: {bad}")
        if not 0 <= self.min_avg_word_length <= self.max_avg_word_length:
            raise ValueError(
                f"{TABLE_PATH} [{self.language}]: min_avg_word_length {self.min_avg_word_length} must be in "
                f"[0, max_avg_word_length {self.max_avg_word_length}]"
            )
        if self.new_line_ratio <= 0:
            raise ValueError(f"{TABLE_PATH} [{self.language}]: new_line_ratio must be > 0, got {self.new_line_ratio}")


@functools.cache
def _table() -> dict[str, LanguageThresholds]:
    data = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    pipeline = data["pipeline"]
    rows = {}
    for lang, row in data["languages"].items():
        rows[lang] = LanguageThresholds(
            language=lang,
            config=row["config"],
            dup_line_frac=row["dup_line_frac"],
            top_n_grams=tuple((int(n), float(r)) for n, r in row["top_n_grams"]),
            dup_n_grams=tuple((int(n), float(r)) for n, r in row["dup_n_grams"]),
            line_punct_thr=row["line_punct_thr"],
            new_line_ratio=row["new_line_ratio"],
            min_avg_word_length=row["min_avg_word_length"],
            max_avg_word_length=row["max_avg_word_length"],
            max_non_alpha_words_ratio=row["max_non_alpha_words_ratio"],
            stopwords=frozenset(row["stopwords"]),
            char_duplicates_ratio=pipeline["char_duplicates_ratio"],
            short_line_thr=pipeline["short_line_thr"],
        )
    # A label without its script ("zh", "sr", "uz") reads its first scripted row ("zh-Hans").
    for lang in sorted(rows):
        if "-" in lang:
            rows.setdefault(lang.split("-")[0], rows[lang])
    return rows


def load_table() -> None:
    """Read and check the table now (filters call it when built, so that a bad row stops the run before any work)."""
    _table()


def table_languages() -> list[str]:
    """The labels that have a row (scriptless aliases included)."""
    return sorted(_table())


def thresholds_for(lang: str | None) -> LanguageThresholds | None:
    """The row of `lang` (a language-ID label such as "th", "zh-Hant" or "sr-Cyrl"), or None when it has none
    (English among them: it keeps the filters' own defaults)."""
    if not lang:
        return None
    table = _table()
    row = table.get(lang)
    if row is None:
        base = normalize_lang(lang)
        row = table.get(base) if base else None
    return row
