"""Decontamination: drop training documents that cover most of an evaluation item with shared word n-grams.

Rule (Llama 3, Dubey et al. 2024, arXiv 2407.21783, sec. 5.1.4, after Singh et al. 2024, arXiv 2411.03923): an
item is contaminated in a document when the fraction of its tokens covered by n-grams (n = 8) that also occur in
the document reaches a threshold. Coverage, unlike "one shared 13-gram" (GPT-3, arXiv 2005.14165, app. C), keeps
a copy whose every tenth word was changed: the 8-grams between two changes still cover 9 tokens in 10. The
n-grams are looked up anywhere in the document, so reordered sentences match too. Each field of an item (question,
solution, ...) is a unit of its own, so a document quoting only the question is caught.

Normalisation, on both sides, so that a perturbed copy has the same tokens as the item:

- NFKC, lowercase; every run of digits becomes "0" (a copy with renamed numbers);
- words are those of the MinHash tokenizer (`\\w+`, one token per CJK / Thai character); punctuation and
  whitespace are dropped;
- simple inflection: a light suffix stripper (`stem`) maps plural and tense forms to one stem ("apples" and
  "apple" -> "appl", "walked" and "walks" -> "walk"). It is not Porter's stemmer: it only has to be consistent.

Short units, with fewer than `ngram` words, are matched whole: their full sequence of tokens, where punctuation and
symbol characters count as tokens too (`Simplify $\\sqrt{242}$.` is 9 tokens), must appear contiguously in the
document. Symbols are kept there because a word-only short sequence matches ordinary text (the MMLU choices
`a < c`, `a < b`, ... are the words "a c a b a b a b", found in C code). Units of fewer than `min_short_tokens`
such tokens are not indexed (counted in `skipped_short`).

Generic n-grams (those in more than `max_ngram_items` items, e.g. "which of the following is not a ...") are left
out of the index: they say nothing about which item a document copies and make clean text look contaminated.

The index (sorted uint64 n-gram keys with their unit and position) is cached as one .npz file keyed by the sha256
of the evaluation sets and the parameters, under `$CORPUSFORGE_CACHE/decontam` (default
`~/.cache/corpusforge/decontam`), so that every worker after the first loads it instead of building it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from dedup.evalsets import EvalSet, ShippedSet
from dedup.minhash import DEFAULT_CHAR_SCRIPTS, make_tokenizer, ngram_hashes
from filters.base import Filter, FilterResult
from schemas import Document

__all__ = ["Decontaminator", "EvalSet", "ShippedSet", "stem", "cache_dir"]

log = logging.getLogger(__name__)

INDEX_VERSION = 10  # bump when tokenisation, stemming or the index layout changes: old cache files are ignored
_DIGITS = re.compile(r"\d+")
_MEMO_MAX = 1 << 21  # token -> hash memo entries before it is cleared (bounds memory on any corpus)


class EvalSource(Protocol):
    """What the index needs from an evaluation set (`EvalSet`, `ShippedSet`)."""

    name: str
    fields: tuple[str, ...]

    def sha256(self) -> str: ...

    def texts(self) -> Iterable[tuple[str, list[str]]]: ...


# Common irregular verbs and the auxiliaries be / have / do, past and participle -> base form ("simple inflection"
# includes "was" -> "is" and "sold" -> "sells" as much as "walked" -> "walks").
_IRREGULAR = {
    w: base
    for base, forms in {
        "be": "is are was were am been being",
        "have": "has had having",
        "do": "does did done doing",
        "buy": "bought",
        "sell": "sold",
        "make": "made",
        "give": "gave given",
        "take": "took taken",
        "spend": "spent",
        "eat": "ate eaten",
        "run": "ran",
        "get": "got gotten",
        "pay": "paid",
        "go": "went gone goes",
        "find": "found",
        "see": "saw seen",
        "drive": "drove driven",
        "write": "wrote written",
        "read": "read",
        "grow": "grew grown",
        "throw": "threw thrown",
        "build": "built",
        "keep": "kept",
        "bring": "brought",
        "catch": "caught",
        "leave": "left",
        "feel": "felt",
        "tell": "told",
        "say": "said",
        "think": "thought",
        "come": "came",
        "become": "became",
        "begin": "began begun",
        "know": "knew known",
        "lose": "lost",
        "win": "won",
        "send": "sent",
        "meet": "met",
        "sit": "sat",
        "stand": "stood",
        "hold": "held",
        "fall": "fell fallen",
        "choose": "chose chosen",
        "fly": "flew flown",
        "swim": "swam swum",
        "ride": "rode",
        "break": "broke broken",
        "speak": "spoke spoken",
        "wear": "wore worn",
        "teach": "taught",
        "lend": "lent",
        "draw": "drew drawn",
        "sing": "sang sung",
        "drink": "drank drunk",
        "sleep": "slept",
        "lay": "laid",
    }.items()
    for w in forms.split()
}


def stem(word: str) -> str:
    """Map an irregular verb form to its base, strip one English inflection suffix (plural, past, -ing), then a
    final e / y; for matching only.

    "apples"/"apple" -> "appl", "candies"/"candy" -> "candi", "stopped"/"stops" -> "stop", "baking"/"bakes" -> "bak".
    """
    word = _IRREGULAR.get(word, word)
    if len(word) < 4:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "i"
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith(("ed", "es")) and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":  # stopp -> stop
        word = word[:-1]
    if len(word) > 3 and word[-1] == "e":
        word = word[:-1]
    elif len(word) > 3 and word[-1] == "y":
        word = word[:-1] + "i"
    return word


def cache_dir() -> Path:
    """Where built indexes are cached: `$CORPUSFORGE_CACHE/decontam`, default `~/.cache/corpusforge/decontam`."""
    root = os.environ.get("CORPUSFORGE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "corpusforge") / "decontam"


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
        # Words as the MinHash tokenizer, plus every other non-space character as its own token (short units).
        self.pattern = re.compile(make_tokenizer(self.char_scripts).pattern + r"|[^\w\s]")
        self._memo: dict[str, int] = {}
        self.set_names = [es.name for es in eval_sets]
        if len(set(self.set_names)) != len(self.set_names):
            raise ValueError(f"evaluation set names must be unique, got {self.set_names}")
        t0 = time.perf_counter()
        key = self._cache_key(eval_sets)
        path = cache_dir() / f"{key}.npz" if cache and eval_sets else None  # nothing to save for no sets
        arrays = _load_cached(path) if path is not None else None
        self.cache_hit = arrays is not None
        if arrays is None:
            arrays = self._build(eval_sets)
            if path is not None:
                _save_cached(path, arrays)
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

    def _build(self, eval_sets: list[EvalSource]) -> dict[str, np.ndarray]:
        n = self.ngram
        grams: list[np.ndarray] = []  # per unit: its indexed n-gram hashes (none for a unit matched whole)
        starts: list[np.ndarray] = []  # per unit: their positions (in words)
        whole = {"norm": _WholeBuilder(self.min_short_tokens), "exact": _WholeBuilder(self.min_short_tokens)}
        unit_item: list[int] = []
        unit_field: list[int] = []
        unit_len: list[int] = []
        item_set: list[int] = []
        skipped = np.zeros(len(eval_sets), np.int64)
        none = np.zeros(0, np.uint64), np.zeros(0, np.int32)
        long_hashes: dict[int, np.ndarray] = {}  # unit -> token hashes, for the units indexed by n-grams

        def add(item: int, field_no: int, g: np.ndarray, p: np.ndarray, length: int) -> None:
            grams.append(g)
            starts.append(p)
            unit_len.append(length)
            unit_item.append(item)
            unit_field.append(field_no)

        def add_whole(kind: str, item: int, field_no: int, h: np.ndarray, min_content: int) -> bool:
            words = h[_is_word(h)]
            if len(h) < self.min_short_tokens or int(_is_content(words).sum()) < min_content:
                return False
            whole[kind].add(h, len(unit_item))
            add(item, field_no, *none, max(1, len(words)))
            return True

        def add_exact(item: int, field_no: int, toks: list[str], min_content: int) -> bool:
            """Index `toks` to be matched whole with its numbers as they are, and normalised as a prefilter: a
            document is hashed exactly only when the normalised sequence finds a candidate."""
            if not add_whole("exact", item, field_no, self._exact(toks), min_content):
                return False
            whole["norm"].add(self._hashes(toks), len(unit_item) - 1)
            return True

        for set_id, es in enumerate(eval_sets):
            for _, fields in es.texts():
                item = len(item_set)
                item_set.append(set_id)
                toks = [self._tokens(text) for text in fields]
                hashes = [self._hashes(t) for t in toks]
                indexed = 0
                for field_no, h in enumerate(hashes):
                    words = h[_is_word(h)]
                    g, p = self._content_ngrams(words) if len(words) >= n else none
                    if len(g):
                        long_hashes[len(unit_item)] = h
                        add(item, field_no, g, p, 0)  # its length is set once generic n-grams are gone
                        indexed += 1
                    elif add_whole("norm", item, field_no, h, 2):  # short, or mostly numbers and variables
                        indexed += 1
                    elif add_exact(item, field_no, toks[field_no], 1):  # "Simplify $(u+4)...$."
                        indexed += 1
                    else:
                        skipped[set_id] += 1
                # An item none of whose fields is distinctive alone (MMLU "Compute 22 / 2 + 9." with choices
                # "10 11 20 2") is matched as all its fields in a row, with its numbers as they are.
                if not indexed:
                    add_exact(item, -1, [t for f in toks for t in f], 0)
        lens = np.fromiter((len(g) for g in grams), np.int64, len(grams))
        keys = np.concatenate(grams) if grams else none[0]
        units = np.repeat(np.arange(len(grams), dtype=np.int32), lens)
        pos = np.concatenate(starts) if starts else none[1]
        keys, units, pos = _sorted_specific(keys, units, pos, np.asarray(unit_item, np.int64), self.max_ngram_items)
        # A unit's length is the number of its words that its remaining n-grams cover: coverage is judged on what
        # is specific to it (MMLU's 895 moral scenarios share a 40-word preamble; the scenarios differ).
        order = np.lexsort((pos, units))
        u, p = units[order].astype(np.int64), pos[order].astype(np.int64)
        gap = np.full(len(u), n, np.int64)
        same = u[1:] == u[:-1]
        gap[:-1][same] = np.minimum(n, np.diff(p))[same]
        covered = np.bincount(u, weights=gap, minlength=len(unit_len)).astype(np.int64)
        for unit, h in long_hashes.items():
            unit_len[unit] = int(covered[unit])
            if not covered[unit]:  # only generic n-grams: the field must then appear whole
                whole["norm"].add(h, unit)
                unit_len[unit] = max(1, int(_is_word(h).sum()))
        return {
            "keys": keys,
            "units": units,
            "pos": pos,
            "unit_item": np.asarray(unit_item, np.int32),
            "unit_field": np.asarray(unit_field, np.int32),
            "unit_len": np.asarray(unit_len, np.int32),
            "item_set": np.asarray(item_set, np.int32),
            "skipped": skipped,
            **{f"{kind}_{k}": v for kind, b in whole.items() for k, v in b.arrays().items()},
        }

    def _content_ngrams(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The n-grams of `words` with at least `min_content_words` content words, and their start positions.

        Numbers (all "0" after normalisation) and one-letter variables say little about which item a text copies:
        the MMLU choices "500 J 1,000 J 1,100 J 2,000 J" or "x^2 + y^2 = 1 ..." would match any physics or algebra
        text. An n-gram made mostly of them is not indexed.
        """
        n = self.ngram
        cs = np.r_[0, np.cumsum(_is_content(words))]
        ok = np.flatnonzero(cs[n:] - cs[:-n] >= self.min_content_words)
        return ngram_hashes(words, n)[ok], ok.astype(np.int32)

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        self._keys, self._units, self._pos = a["keys"], a["units"], a["pos"]
        self._unit_item, self._unit_len, self._item_set = a["unit_item"], a["unit_len"], a["item_set"]
        self._unit_field = a["unit_field"]
        self._whole = _WholeIndex(a, "norm", self.min_short_tokens)
        self._whole_exact = _WholeIndex(a, "exact", self.min_short_tokens)
        self._exact_unit = np.zeros(len(self._unit_item), bool)
        self._exact_unit[self._whole_exact.unit] = True
        # Prefilter: one bit per value of a key's top 24 bits; most n-grams of clean text miss it, and a lookup
        # in it is far cheaper than a binary search of millions of keys.
        self._bloom = np.zeros(1 << 24, bool)
        self._bloom[self._keys >> np.uint64(40)] = True
        self.skipped_short = dict(zip(self.set_names, a["skipped"].tolist(), strict=True))
        counts = np.bincount(self._item_set, minlength=len(self.set_names))
        self.items_per_set = dict(zip(self.set_names, counts.tolist(), strict=True))

    def _tokens(self, text: str) -> list[str]:
        """Tokens of NFKC-lowercased `text`: words as the MinHash tokenizer, every other non-space character alone."""
        return self.pattern.findall(unicodedata.normalize("NFKC", text).lower())

    def _hashes(self, toks: list[str]) -> np.ndarray:
        """uint64 hash per normalised token (digit runs -> "0", `stem`); bit 0 is set for symbol tokens, bit 1 for
        weak words (numbers, one ASCII letter)."""
        memo = self._memo
        try:
            return np.fromiter(map(memo.__getitem__, toks), np.uint64, len(toks))
        except KeyError:
            if len(memo) > _MEMO_MAX:
                memo.clear()
            import xxhash

            for tok in set(toks).difference(memo):
                norm = _DIGITS.sub("0", tok)
                word = norm[0].isalnum() or norm[0] == "_"
                weak = norm == "0" or (len(norm) == 1 and norm.isascii())  # a number or a one-letter variable
                h = xxhash.xxh3_64_intdigest(stem(norm) if word else norm)
                # The two low bits tag symbols and weak tokens, so masks are one vectorised `&` away.
                memo[tok] = (h & ~3) | (0 if word else 1) | (2 if weak else 0)
            return np.fromiter(map(memo.__getitem__, toks), np.uint64, len(toks))

    @staticmethod
    def _exact(toks: list[str]) -> np.ndarray:
        """uint64 hash per token as it is (numbers kept), for the items matched exactly."""
        import xxhash

        return np.fromiter(map(xxhash.xxh3_64_intdigest, toks), np.uint64, len(toks))

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
        toks = self._tokens(text)
        h = self._hashes(toks)
        parts = [self._coverage(h[_is_word(h)])]
        found = self._whole.hits(h)
        if len(found) and self._exact_unit[found].any():  # a candidate that must match with its numbers
            found = np.union1d(found[~self._exact_unit[found]], self._whole_exact.hits(self._exact(toks)))
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


class _WholeBuilder:
    """Collects units matched whole: a key of their first `prefix` tokens, and all their token hashes."""

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix
        self.rows: list[tuple[int, int]] = []  # (prefix hash, unit)
        self.seqs: list[np.ndarray] = []

    def add(self, h: np.ndarray, unit: int) -> None:
        m = self.prefix
        self.rows.append((int(ngram_hashes(h[:m], m)[0]), unit))
        self.seqs.append(h)

    def arrays(self) -> dict[str, np.ndarray]:
        r = np.asarray(self.rows, np.uint64).reshape(-1, 2)
        order = np.argsort(r[:, 0], kind="stable")
        lens = np.fromiter((len(self.seqs[i]) for i in order), np.int64, len(order))
        seqs = [self.seqs[i] for i in order]
        return {
            "pre": r[order, 0],
            "unit": r[order, 1].astype(np.int64),
            "len": lens,
            "off": np.cumsum(lens) - lens,
            "tok": np.concatenate(seqs) if seqs else np.zeros(0, np.uint64),
        }


class _WholeIndex:
    """Lookup side of `_WholeBuilder`: units whose full token sequence occurs in a document."""

    def __init__(self, a: dict[str, np.ndarray], kind: str, prefix: int) -> None:
        self.prefix = prefix
        self.pre, self.unit, self.len, self.off, self.tok = (
            a[f"{kind}_{k}"] for k in ("pre", "unit", "len", "off", "tok")
        )

    def __len__(self) -> int:
        return len(self.pre)

    def hits(self, h: np.ndarray) -> np.ndarray:
        """Units whose sequence appears in the token hashes `h` (prefix lookup, then a comparison in full)."""
        m = self.prefix
        if not len(self.pre) or len(h) < m:
            return np.zeros(0, np.int64)
        pre = ngram_hashes(h, m)
        lo = np.searchsorted(self.pre, pre, "left")
        hi = np.searchsorted(self.pre, pre, "right")
        found: set[int] = set()
        for i in np.flatnonzero(hi > lo).tolist():
            for j in range(int(lo[i]), int(hi[i])):  # every unit with this prefix
                k, off = int(self.len[j]), int(self.off[j])
                if i + k <= len(h) and np.array_equal(h[i : i + k], self.tok[off : off + k]):
                    found.add(int(self.unit[j]))
        return np.array(sorted(found), dtype=np.int64)


def _is_word(h: np.ndarray) -> np.ndarray:
    return (h & np.uint64(1)) == 0


def _is_content(words: np.ndarray) -> np.ndarray:
    return (words & np.uint64(2)) == 0


def _covered(starts: np.ndarray, n: int) -> int:
    """Number of positions in the union of [s, s + n) over sorted `starts`."""
    if not len(starts):
        return 0
    return int(np.minimum(np.diff(starts), n).sum()) + n


def _sorted_specific(
    keys: np.ndarray, units: np.ndarray, pos: np.ndarray, unit_item: np.ndarray, max_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index entries sorted by key, without those of keys that occur in more than `max_items` distinct items."""
    items = unit_item[units]
    order = np.lexsort((items, keys))
    keys, units, pos, items = keys[order], units[order], pos[order], items[order]
    if not len(keys):
        return keys, units, pos
    run_start = np.r_[True, keys[1:] != keys[:-1]]
    new_item = run_start | np.r_[True, items[1:] != items[:-1]]
    run_id = np.cumsum(run_start) - 1
    distinct = np.bincount(run_id, weights=new_item)  # distinct items per key
    keep = distinct[run_id] <= max_items
    return keys[keep], units[keep], pos[keep]


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:  # a truncated or foreign file: rebuild and overwrite it
        log.warning("decontam index cache %s unreadable (%s): rebuilding", path, e)
        return None


def _save_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the index through a unique temporary file and a rename: concurrent workers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users of a shared home
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:  # a read-only home is no reason to stop: the index is in memory
        log.warning("decontam index not cached at %s: %s", path, e)
