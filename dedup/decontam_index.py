"""Decontamination's index: built once from the evaluation sets, cached as one .npz file, looked up per document.

The index holds, per unit (a field of an item, or a whole item matched as all its fields in a row):
- its specific n-grams: sorted uint64 keys with their unit and word position, without the generic n-grams found
  in more than `max_ngram_items` items ("which of the following is not a ...": they say nothing about which item a
  document copies and make clean text look contaminated);
- or, for a unit too short for n-grams (or mostly numbers and variables), its whole token sequence, found in a
  document by a prefix key and a comparison in full (`WholeBuilder` / `WholeIndex`).

Why a cache: building the index of every shipped set takes seconds; every worker after the first loads it. The
file is keyed by the sha256 of the evaluation sets and the parameters, under `$CORPUSFORGE_CACHE/decontam` (default
`~/.cache/corpusforge/decontam`), and written through a temporary file and a rename.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from core.cache import cache_dir as shared_cache_dir
from dedup.decontam_tokens import TokenHasher, is_content, is_word
from dedup.minhash import ngram_hashes

log = logging.getLogger(__name__)

INDEX_VERSION = 10  # bump when tokenisation, stemming or the index layout changes: old cache files are ignored


class EvalSource(Protocol):
    """What the index needs from an evaluation set (`EvalSet`, `ShippedSet`)."""

    name: str
    fields: tuple[str, ...]

    def sha256(self) -> str: ...

    def texts(self) -> Iterable[tuple[str, list[str]]]: ...


def cache_dir() -> Path:
    """Where built indexes are cached: `$CORPUSFORGE_CACHE/decontam`, default `~/.cache/corpusforge/decontam`."""
    return shared_cache_dir("decontam")


def build_index(
    eval_sets: list[EvalSource],
    hasher: TokenHasher,
    ngram: int,
    min_short_tokens: int,
    min_content_words: int,
    max_ngram_items: int,
) -> dict[str, np.ndarray]:
    """The index arrays of `eval_sets` (see the module docstring; the arguments are `Decontaminator`'s)."""
    builder = _IndexBuilder(hasher, ngram, min_short_tokens, min_content_words, len(eval_sets))
    for set_id, es in enumerate(eval_sets):
        for _, fields in es.texts():
            builder.add_item(set_id, fields)
    return builder.arrays(max_ngram_items)


class _IndexBuilder:
    """Collects the units of every item, then sorts and trims them into the index arrays."""

    def __init__(
        self, hasher: TokenHasher, ngram: int, min_short_tokens: int, min_content_words: int, num_sets: int
    ) -> None:
        self.hasher = hasher
        self.ngram = ngram
        self.min_short_tokens = min_short_tokens
        self.min_content_words = min_content_words
        self.grams: list[np.ndarray] = []  # per unit: its indexed n-gram hashes (none for a unit matched whole)
        self.starts: list[np.ndarray] = []  # per unit: their positions (in words)
        self.whole = {"norm": WholeBuilder(min_short_tokens), "exact": WholeBuilder(min_short_tokens)}
        self.unit_item: list[int] = []
        self.unit_field: list[int] = []
        self.unit_len: list[int] = []
        self.item_set: list[int] = []
        self.skipped = np.zeros(num_sets, np.int64)
        self.none = np.zeros(0, np.uint64), np.zeros(0, np.int32)
        self.long_hashes: dict[int, np.ndarray] = {}  # unit -> token hashes, for the units indexed by n-grams

    def add_item(self, set_id: int, fields: list[str]) -> None:
        """Index each field of one item as a unit: by its n-grams, else whole, else whole with its numbers."""
        item = len(self.item_set)
        self.item_set.append(set_id)
        toks = [self.hasher.tokens(text) for text in fields]
        hashes = [self.hasher.hashes(t) for t in toks]
        indexed = 0
        for field_no, h in enumerate(hashes):
            words = h[is_word(h)]
            g, p = self._content_ngrams(words) if len(words) >= self.ngram else self.none
            if len(g):
                self.long_hashes[len(self.unit_item)] = h
                self._add(item, field_no, g, p, 0)  # its length is set once generic n-grams are gone
                indexed += 1
            elif self._add_whole("norm", item, field_no, h, 2):  # short, or mostly numbers and variables
                indexed += 1
            elif self._add_exact(item, field_no, toks[field_no], 1):  # "Simplify $(u+4)...$."
                indexed += 1
            else:
                self.skipped[set_id] += 1
        # An item none of whose fields is distinctive alone (MMLU "Compute 22 / 2 + 9." with choices
        # "10 11 20 2") is matched as all its fields in a row, with its numbers as they are.
        if not indexed:
            self._add_exact(item, -1, [t for f in toks for t in f], 0)

    def _add(self, item: int, field_no: int, g: np.ndarray, p: np.ndarray, length: int) -> None:
        self.grams.append(g)
        self.starts.append(p)
        self.unit_len.append(length)
        self.unit_item.append(item)
        self.unit_field.append(field_no)

    def _add_whole(self, kind: str, item: int, field_no: int, h: np.ndarray, min_content: int) -> bool:
        words = h[is_word(h)]
        if len(h) < self.min_short_tokens or int(is_content(words).sum()) < min_content:
            return False
        self.whole[kind].add(h, len(self.unit_item))
        self._add(item, field_no, *self.none, max(1, len(words)))
        return True

    def _add_exact(self, item: int, field_no: int, toks: list[str], min_content: int) -> bool:
        """Index `toks` to be matched whole with its numbers as they are, and normalised as a prefilter: a
        document is hashed exactly only when the normalised sequence finds a candidate."""
        if not self._add_whole("exact", item, field_no, self.hasher.exact(toks), min_content):
            return False
        self.whole["norm"].add(self.hasher.hashes(toks), len(self.unit_item) - 1)
        return True

    def _content_ngrams(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The n-grams of `words` with at least `min_content_words` content words, and their start positions.

        Numbers (all "0" after normalisation) and one-letter variables say little about which item a text copies:
        the MMLU choices "500 J 1,000 J 1,100 J 2,000 J" or "x^2 + y^2 = 1 ..." would match any physics or algebra
        text. An n-gram made mostly of them is not indexed.
        """
        n = self.ngram
        cs = np.r_[0, np.cumsum(is_content(words))]
        ok = np.flatnonzero(cs[n:] - cs[:-n] >= self.min_content_words)
        return ngram_hashes(words, n)[ok], ok.astype(np.int32)

    def arrays(self, max_ngram_items: int) -> dict[str, np.ndarray]:
        """The index arrays: n-gram entries sorted by key without the generic ones, unit lengths, whole units."""
        n, grams, unit_len = self.ngram, self.grams, self.unit_len
        lens = np.fromiter((len(g) for g in grams), np.int64, len(grams))
        keys = np.concatenate(grams) if grams else self.none[0]
        units = np.repeat(np.arange(len(grams), dtype=np.int32), lens)
        pos = np.concatenate(self.starts) if self.starts else self.none[1]
        keys, units, pos = _sorted_specific(keys, units, pos, np.asarray(self.unit_item, np.int64), max_ngram_items)
        # A unit's length is the number of its words that its remaining n-grams cover: coverage is judged on what
        # is specific to it (MMLU's 895 moral scenarios share a 40-word preamble; the scenarios differ).
        order = np.lexsort((pos, units))
        u, p = units[order].astype(np.int64), pos[order].astype(np.int64)
        gap = np.full(len(u), n, np.int64)
        same = u[1:] == u[:-1]
        gap[:-1][same] = np.minimum(n, np.diff(p))[same]
        covered = np.bincount(u, weights=gap, minlength=len(unit_len)).astype(np.int64)
        for unit, h in self.long_hashes.items():
            unit_len[unit] = int(covered[unit])
            if not covered[unit]:  # only generic n-grams: the field must then appear whole
                self.whole["norm"].add(h, unit)
                unit_len[unit] = max(1, int(is_word(h).sum()))
        return {
            "keys": keys,
            "units": units,
            "pos": pos,
            "unit_item": np.asarray(self.unit_item, np.int32),
            "unit_field": np.asarray(self.unit_field, np.int32),
            "unit_len": np.asarray(unit_len, np.int32),
            "item_set": np.asarray(self.item_set, np.int32),
            "skipped": self.skipped,
            **{f"{kind}_{k}": v for kind, b in self.whole.items() for k, v in b.arrays().items()},
        }


class WholeBuilder:
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


class WholeIndex:
    """Lookup side of `WholeBuilder`: units whose full token sequence occurs in a document."""

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


def load_cached(path: Path) -> dict[str, np.ndarray] | None:
    """The index arrays cached at `path`, or None when there are none (or the file is unreadable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:  # a truncated or foreign file: rebuild and overwrite it
        log.warning("decontam index cache %s unreadable (%s): rebuilding", path, e)
        return None


def save_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
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
