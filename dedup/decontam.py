"""Decontamination: drop training documents that cover most of an evaluation item with shared word n-grams.

Rule (Llama 3, Dubey et al. 2024, arXiv 2407.21783, sec. 5.1.4, after Singh et al. 2024, arXiv 2411.03923): an
item is contaminated in a document when the fraction of its tokens covered by n-grams (n = 8) that also occur in
the document reaches a threshold. Coverage, unlike "one shared 13-gram" (GPT-3, arXiv 2005.14165, app. C), keeps
a copy whose every tenth word was changed: the 8-grams between two changes still cover 9 tokens in 10. The
n-grams are looked up anywhere in the document, so reordered sentences match too. Each field of an item (question,
solution, ...) is a unit of its own, so a document quoting only the question is caught.

Normalisation, on both sides, so that a perturbed copy has the same tokens as the item (case, digit runs,
punctuation, simple inflection): dedup/decontam_tokens.py.

Short units, with fewer than `ngram` words, are matched whole: their full sequence of tokens, where punctuation and
symbol characters count as tokens too (`Simplify $\\sqrt{242}$.` is 9 tokens), must appear contiguously in the
document. Symbols are kept there because a word-only short sequence matches ordinary text (the MMLU choices
`a < c`, `a < b`, ... are the words "a c a b a b a b", found in C code). Units of fewer than `min_short_tokens`
such tokens are not indexed (counted in `skipped_short`).

Generic n-grams (those in more than `max_ngram_items` items) are left out of the index, which is built once and
cached as one .npz file: dedup/decontam_index.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from typing import Literal

import numpy as np

from dedup.decontam_index import (
    INDEX_VERSION,
    EvalSource,
    WholeIndex,
    build_index,
    cache_dir,
    load_cached,
    save_cached,
)
from dedup.decontam_tokens import TokenHasher, is_word, stem
from dedup.evalsets import EvalSet, ShippedSet
from dedup.minhash import DEFAULT_CHAR_SCRIPTS, ngram_hashes
from filters.base import Filter, FilterResult
from schemas import Document

__all__ = ["Decontaminator", "EvalSet", "ShippedSet", "stem", "cache_dir"]


class Decontaminator(Filter):
    """Filter that drops documents covering most of an evaluation item's tokens with shared n-grams.

    Returns `(False, "decontam_<evalset>", score)` where score is the covered fraction of the best-matching unit
    (a field of an item; 1.0: the whole field is there, possibly perturbed).

    Args:
        eval_sets: evaluation sets to protect (`EvalSet` JSON Lines files, `dedup.evalsets.ShippedSet`s).
        ngram: n-gram length in normalised words (8, Llama 3).
        min_coverage: fraction of a unit's words covered by shared n-grams that makes a document contaminated.
            0.6: at 0.5 a MATH question whose few specific 8-grams fall into two halves matched a sympy docstring
            quoting one half; copies with every tenth word changed still cover ~0.9 (BENCHMARKS.md).
        min_short_tokens: shortest unit (in word + symbol tokens) matched whole when it has fewer than `ngram`
            words.
        min_matches: distinct matching n-gram positions a unit needs besides its coverage.
        min_content_words: words of an indexed n-gram that are not numbers or one ASCII letter (default: a
            majority, ngram // 2 + 1); a short unit needs 2.
        max_ngram_items: n-grams found in more evaluation items than this are not indexed (generic phrasing).
        char_scripts: scripts tokenised per character (as MinHash dedup).
        cache: load / store the built index under `cache_dir()`; False builds it every time.
    """

    name = "decontam"

    def __init__(
        self,
        eval_sets: list[EvalSource],
        ngram: int = 8,
        min_coverage: float = 0.6,
        min_short_tokens: int = 6,
        min_matches: int = 1,
        min_content_words: int | None = None,
        max_ngram_items: int = 20,
        char_scripts: Iterable[str] = DEFAULT_CHAR_SCRIPTS,
        cache: bool = True,
    ) -> None:
        if ngram < 2:
            raise ValueError(f"ngram must be >= 2, got {ngram}")
        if not 0.0 < min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
        if min_short_tokens < 1:
            raise ValueError(f"min_short_tokens must be >= 1, got {min_short_tokens}")
        if min_matches < 1:
            raise ValueError(f"min_matches must be >= 1, got {min_matches}")
        self.min_content_words = ngram // 2 + 1 if min_content_words is None else min_content_words
        if not 0 <= self.min_content_words <= ngram:
            raise ValueError(f"min_content_words must be in [0, ngram={ngram}], got {min_content_words}")
        if max_ngram_items < 1:
            raise ValueError(f"max_ngram_items must be >= 1, got {max_ngram_items}")
        self.ngram = ngram
        self.min_coverage = min_coverage
        self.min_short_tokens = min_short_tokens
        self.min_matches = min_matches
        self.max_ngram_items = max_ngram_items
        self.char_scripts = tuple(char_scripts)
        self.hasher = TokenHasher(self.char_scripts)
        self.set_names = [es.name for es in eval_sets]
        if len(set(self.set_names)) != len(self.set_names):
            raise ValueError(f"evaluation set names must be unique, got {self.set_names}")
        t0 = time.perf_counter()
        key = self._cache_key(eval_sets)
        path = cache_dir() / f"{key}.npz" if cache and eval_sets else None  # nothing to save for no sets
        arrays = load_cached(path) if path is not None else None
        self.cache_hit = arrays is not None
        if arrays is None:
            arrays = build_index(
                eval_sets, self.hasher, ngram, min_short_tokens, self.min_content_words, max_ngram_items
            )
            if path is not None:
                save_cached(path, arrays)
        self._set_arrays(arrays)
        self.build_seconds = time.perf_counter() - t0

    # --- index ---------------------------------------------------------------------------------------

    def _cache_key(self, eval_sets: list[EvalSource]) -> str:
        params = [
            INDEX_VERSION,
            self.ngram,
            self.min_short_tokens,
            self.min_content_words,
            self.max_ngram_items,
            self.char_scripts,
        ]
        return hashlib.sha256(json.dumps([params, [es.sha256() for es in eval_sets]]).encode()).hexdigest()[:32]

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        self._keys, self._units, self._pos = a["keys"], a["units"], a["pos"]
        self._unit_item, self._unit_len, self._item_set = a["unit_item"], a["unit_len"], a["item_set"]
        self._unit_field = a["unit_field"]
        self._whole = WholeIndex(a, "norm", self.min_short_tokens)
        self._whole_exact = WholeIndex(a, "exact", self.min_short_tokens)
        self._exact_unit = np.zeros(len(self._unit_item), bool)
        self._exact_unit[self._whole_exact.unit] = True
        # Prefilter: one bit per value of a key's top 24 bits; most n-grams of clean text miss it, and a lookup
        # in it is far cheaper than a binary search of millions of keys.
        self._bloom = np.zeros(1 << 24, bool)
        self._bloom[self._keys >> np.uint64(40)] = True
        self.skipped_short = dict(zip(self.set_names, a["skipped"].tolist(), strict=True))
        counts = np.bincount(self._item_set, minlength=len(self.set_names))
        self.items_per_set = dict(zip(self.set_names, counts.tolist(), strict=True))

    # --- lookup --------------------------------------------------------------------------------------

    def describe(self) -> str:
        sets = ", ".join(
            f"{n} ({self.items_per_set[n]} items, {self.skipped_short[n]} fields not indexed)" for n in self.set_names
        )
        return (
            f"{self.name}: {self.ngram}-gram coverage >= {self.min_coverage} of a field (normalised: case, digits, "
            f"punctuation, inflection; short fields whole if {self.min_short_tokens}+ word/symbol tokens; "
            f"index {len(self._keys):,} n-grams + {len(self._whole) + len(self._whole_exact):,} whole fields, "
            f"{'cached' if self.cache_hit else 'built'} in {self.build_seconds:.1f}s) vs {sets}"
        )

    def matches(self, text: str) -> list[tuple[str, int, int, float]]:
        """Why `text` is (or is not) dropped: (set, item number in the set, field number or -1 for the whole item,
        coverage) of every unit it shares an n-gram with or holds whole, best first."""
        units, cover = self._units_covered(text)[:2]
        first_item = np.searchsorted(self._item_set, np.arange(len(self.set_names)))
        out = []
        for u, c in sorted(zip(units.tolist(), cover.tolist(), strict=True), key=lambda x: (-x[1], x[0])):
            item = int(self._unit_item[u])
            set_id = int(self._item_set[item])
            out.append((self.set_names[set_id], item - int(first_item[set_id]), int(self._unit_field[u]), c))
        return out

    def check(self, text: str) -> Literal[True] | tuple[bool, str, float]:
        """True if no evaluation unit is covered by `text`, else (False, "decontam_<set>", coverage)."""
        units, cover, matches = self._units_covered(text)
        ok = (cover >= self.min_coverage) & (matches >= self.min_matches)
        if not ok.any():
            return True
        units, cover = units[ok], cover[ok]
        best = np.lexsort((units, -cover))[0]  # highest coverage; ties: the first unit in load order
        set_id = int(self._item_set[self._unit_item[units[best]]])
        return False, f"{self.name}_{self.set_names[set_id]}", float(min(1.0, cover[best]))

    def _units_covered(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(units, covered fraction, matched n-gram positions) of the units `text` shares n-grams with or holds
        whole (coverage 1)."""
        toks = self.hasher.tokens(text)
        h = self.hasher.hashes(toks)
        parts = [self._coverage(h[is_word(h)])]
        found = self._whole.hits(h)
        if len(found) and self._exact_unit[found].any():  # a candidate that must match with its numbers
            found = np.union1d(found[~self._exact_unit[found]], self._whole_exact.hits(self.hasher.exact(toks)))
        if len(found):
            parts.append((found, np.ones(len(found)), np.full(len(found), self.min_matches)))
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(x) for x in zip(*parts, strict=True))  # type: ignore[return-value]

    def _coverage(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(units, covered fraction of their words, matched n-gram positions) of the units `words` shares n-grams
        with."""
        empty = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
        if not len(self._keys) or len(words) < self.ngram:
            return empty
        q = ngram_hashes(words, self.ngram)
        q = np.unique(q[self._bloom[q >> np.uint64(40)]])
        lo = np.searchsorted(self._keys, q, "left")
        cnt = np.searchsorted(self._keys, q, "right") - lo
        lo, cnt = lo[cnt > 0], cnt[cnt > 0]
        if not len(lo):
            return empty
        # Every index entry of every matching key: lo[i], lo[i] + 1, ..., lo[i] + cnt[i] - 1.
        entries = np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
        pairs = np.unique((self._units[entries].astype(np.int64) << 32) | self._pos[entries].astype(np.int64))
        unit, pos = pairs >> 32, pairs & 0xFFFFFFFF
        # Words covered by n-grams starting at sorted positions p_0 < p_1 < ...: sum of min(n, p_{i+1} - p_i),
        # plus n for the last one of each unit.
        gap = np.full(len(pairs), self.ngram, np.int64)
        same = unit[1:] == unit[:-1]
        gap[:-1][same] = np.minimum(self.ngram, np.diff(pos))[same]
        uniq, inv, matches = np.unique(unit, return_inverse=True, return_counts=True)
        covered = np.bincount(inv, weights=gap)
        return uniq, covered / self._unit_len[uniq], matches

    def filter(self, doc: Document) -> FilterResult:
        return self.check(doc.text)
