"""Decontamination: drop training documents that share a long word n-gram with an evaluation set.

Rule (GPT-3, Brown et al. 2020, arXiv 2005.14165, appendix C; Llama 2 uses a similar token-span rule): a document
is contaminated when it contains any 13-gram of words that also occurs in an evaluation item. 13 words is long
enough that a shared span is almost never chance (no UDHR paragraph or source file in our tests shares one with
GSM8K / MATH / MMLU) and short enough to catch a problem statement pasted into a page.

Words are those of the MinHash tokenizer (`dedup.minhash.tokenize`: NFKC, lowercase, `\\w+`, one token per CJK /
Thai character) with numbers kept as they are: GSM8K items differ mostly by their numbers.

Short items: a field with fewer than `ngram` words is matched as a whole: its full sequence of tokens, where
punctuation and symbol characters count as tokens too (`Simplify $\\sqrt{242}$.` is 9 tokens), must appear
contiguously in the document. Symbols are kept there because a word-only short sequence matches ordinary text
(the MMLU choices `a < c`, `a < b`, ... are the words "a c a b a b a b", found in C code). Fields of fewer than
`min_short_tokens` such tokens are not indexed (counted in `skipped_short`). Each field of an item is indexed on
its own, so a document that quotes only the question (or only the solution) is caught.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dedup.minhash import DEFAULT_CHAR_SCRIPTS, make_tokenizer, ngram_hashes, token_hashes, tokenize
from filters.base import Filter, FilterResult
from schemas import Document


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set in JSON Lines: `fields` are the keys whose text is indexed (a list value is joined)."""

    name: str
    path: Path
    fields: tuple[str, ...] = ("question", "answer")

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"EvalSet name must be snake_case (it goes into a reason), got {self.name!r}")
        if not self.fields:
            raise ValueError(f"EvalSet {self.name!r} needs at least one field")


@dataclass
class _Index:
    hashes: list[np.ndarray] = field(default_factory=list)
    items: list[np.ndarray] = field(default_factory=list)


class Decontaminator(Filter):
    """Filter that drops documents sharing a word n-gram with an evaluation item.

    Returns `(False, "decontam_<evalset>", score)` where score is the fraction of the best-matching item's
    n-grams found in the document (1.0: the whole item is there).

    Args:
        eval_sets: evaluation sets to protect.
        ngram: span length in words (13, GPT-3).
        min_short_tokens: shortest field (in word + symbol tokens) matched as a whole when it has fewer than
            `ngram` words.
        min_matches: distinct matching n-grams needed to drop a document.
        char_scripts: scripts tokenised per character (as MinHash dedup).
    """

    name = "decontam"

    def __init__(
        self,
        eval_sets: list[EvalSet],
        ngram: int = 13,
        min_short_tokens: int = 6,
        min_matches: int = 1,
        char_scripts: Iterable[str] = DEFAULT_CHAR_SCRIPTS,
    ) -> None:
        if ngram < 2:
            raise ValueError(f"ngram must be >= 2, got {ngram}")
        if min_short_tokens < 1:
            raise ValueError(f"min_short_tokens must be >= 1, got {min_short_tokens}")
        if min_matches < 1:
            raise ValueError(f"min_matches must be >= 1, got {min_matches}")
        self.ngram = ngram
        self.min_short_tokens = min_short_tokens
        self.min_matches = min_matches
        self.pattern = make_tokenizer(char_scripts)
        # Words as `pattern`, plus every other non-space character as its own token (short-field rule).
        self.sym_pattern = re.compile(self.pattern.pattern + r"|[^\w\s]")
        self.set_names: list[str] = []
        self.item_set: list[int] = []  # item -> index into set_names
        self.item_ngrams: list[int] = []  # item -> its number of distinct indexed n-grams
        self.skipped_short: dict[str, int] = {}
        self.items_per_set: dict[str, int] = {}
        self._short_full: list[tuple[int, int, int]] = []  # (hash of the whole field, its length, item)
        long_idx, short_idx = _Index(), _Index()
        for es in eval_sets:
            self._load(es, long_idx, short_idx)
        self._long_h, self._long_item = _finish(long_idx)
        self._short_h, self._short_entry = _finish(short_idx)

    def _load(self, es: EvalSet, long_idx: _Index, short_idx: _Index) -> None:
        path = Path(es.path)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation set {es.name!r}: {path} does not exist")
        set_id = len(self.set_names)
        self.set_names.append(es.name)
        skipped = items = 0
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                item = len(self.item_set)
                self.item_set.append(set_id)
                items += 1
                grams: list[np.ndarray] = []
                for name in es.fields:
                    if name not in row:
                        raise ValueError(f"{path}:{line_no}: field {name!r} missing (has {sorted(row)})")
                    toks = tokenize(_as_text(row[name]), self.pattern, normalize_numbers=False)
                    if len(toks) >= self.ngram:
                        grams.append(ngram_hashes(token_hashes(toks), self.ngram))
                        continue
                    sym = tokenize(_as_text(row[name]), self.sym_pattern, normalize_numbers=False)
                    if len(sym) >= self.min_short_tokens:
                        sh = token_hashes(sym)
                        g = ngram_hashes(sh, len(sym))
                        # Indexed by its first min_short_tokens tokens; a prefix hit is checked in full.
                        short_idx.hashes.append(ngram_hashes(sh[: self.min_short_tokens], self.min_short_tokens))
                        short_idx.items.append(np.full(1, len(self._short_full), np.int64))
                        self._short_full.append((int(g[0]), len(sym), item))
                        grams.append(g)
                    else:
                        skipped += 1
                uniq = np.unique(np.concatenate(grams)) if grams else np.zeros(0, np.uint64)
                long_idx.hashes.append(uniq)
                long_idx.items.append(np.full(len(uniq), item, np.int64))
                self.item_ngrams.append(len(uniq))
        self.skipped_short[es.name] = skipped
        self.items_per_set[es.name] = items

    def describe(self) -> str:
        sets = ", ".join(f"{n} ({self.items_per_set[n]} items, {self.skipped_short[n]} short fields skipped)"
                         for n in self.set_names)
        return (
            f"{self.name}: {self.ngram}-word spans (shorter fields whole, if {self.min_short_tokens}+ word/symbol "
            f"tokens) vs {sets}"
        )

    def check(self, text: str) -> Literal[True] | tuple[bool, str, float]:
        """True if `text` shares no span with the evaluation sets, else (False, "decontam_<set>", score)."""
        toks = tokenize(text, self.pattern, normalize_numbers=False)
        hit_items = [_lookup(self._long_h, self._long_item, np.unique(ngram_hashes(token_hashes(toks), self.ngram)))]
        if len(self._short_h) and len(text) >= self.min_short_tokens:
            hit_items.append(self._short_hits(text))
        hits = np.concatenate(hit_items)
        if len(hits) < self.min_matches:
            return True
        counts = np.bincount(hits)
        best = int(np.argmax(counts))  # ties: the first item in load order
        score = min(1.0, counts[best] / max(1, self.item_ngrams[best]))
        return False, f"{self.name}_{self.set_names[self.item_set[best]]}", float(score)

    def _short_hits(self, text: str) -> np.ndarray:
        """Items of the short fields that appear whole in `text` (prefix lookup, then full-length check)."""
        m = self.min_short_tokens
        sym = token_hashes(tokenize(text, self.sym_pattern, normalize_numbers=False))
        pre = ngram_hashes(sym, m)
        pos = np.searchsorted(self._short_h, pre)
        pos[pos == len(self._short_h)] = 0
        starts = np.flatnonzero(self._short_h[pos] == pre)
        found: set[int] = set()
        for i in starts.tolist():
            j = int(pos[i])
            while j < len(self._short_h) and self._short_h[j] == pre[i]:  # every field with this prefix
                full, k, item = self._short_full[int(self._short_entry[j])]
                if i + k <= len(sym) and int(ngram_hashes(sym[i : i + k], k)[0]) == full:
                    found.add(item)
                j += 1
        return np.array(sorted(found), dtype=np.int64)

    def filter(self, doc: Document) -> FilterResult:
        return self.check(doc.text)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _finish(idx: _Index) -> tuple[np.ndarray, np.ndarray]:
    if not idx.hashes:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    h, it = np.concatenate(idx.hashes), np.concatenate(idx.items)
    order = np.argsort(h, kind="stable")
    return h[order], it[order]


def _lookup(keys: np.ndarray, items: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Items of the query hashes found in `keys` (one item per distinct matching hash)."""
    if not len(keys) or not len(query):
        return np.zeros(0, np.int64)
    pos = np.searchsorted(keys, query)
    pos[pos == len(keys)] = 0
    found = keys[pos] == query
    return items[pos[found]]
