"""MinHash-LSH near-duplicate detection, numpy-vectorised and disk-backed (Broder 1997; MMDS ch. 3).

Pipeline of pass 1 (`MinHashDedup.find_duplicates`), per batch of documents:

1. tokens: NFKC, lowercase (digit runs -> "0" only with `normalize_numbers`), then `\\w+` words; characters of
   scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) are one token each, so that n-grams
   of those are character n-grams (a whole Chinese sentence would otherwise be one "word").
2. shingles: each token hashed with xxh3-64, n consecutive token hashes folded into one uint64 (polynomial
   fold + splitmix64 finaliser), vectorised over the whole batch.
3. signature: K = bands x rows hash functions h_k(x) = ((a_k x + b_k) mod 2^64) >> 32 (multiply-add-shift,
   Dietzfelbinger et al. 1997; a_k odd), minimum per document via `np.minimum.reduceat`, uint32.
4. band keys: the r values of each band folded into a uint64, appended with the doc index to one file per band.

Then, per band, equal keys are found by sorting (partitioned on disk when over budget, see `dedup.exact`), the
candidate pairs are verified by the signature-estimated Jaccard (fraction of equal minhashes >= `min_jaccard`,
which removes chance band collisions), and a union-find joins them. One survivor per cluster: the first
document in stream order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dedup.clusters import DupResult, IdSpill, KeySpill, UnionFind, Workdir, build_result, format_bytes
from dedup.exact import expected_candidate_probability, lsh_threshold

# Unicode blocks whose text has no spaces between words: one token per character there.
SCRIPT_RANGES = {
    "thai": "\u0e00-\u0e7f",
    "lao": "\u0e80-\u0eff",
    "myanmar": "\u1000-\u109f",
    "khmer": "\u1780-\u17ff",
    "kana": "\u3040-\u30ff\u31f0-\u31ff",
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
}
DEFAULT_CHAR_SCRIPTS = ("han", "kana", "thai", "lao", "khmer", "myanmar")
_DIGITS = re.compile(r"\d+")
_U64 = np.uint64
_FOLD = _U64(0x9E3779B97F4A7C15)  # golden-ratio odd constant


def make_tokenizer(char_scripts: Iterable[str] = DEFAULT_CHAR_SCRIPTS) -> re.Pattern[str]:
    """Regex whose `findall` gives words, and single characters for `char_scripts`."""
    chars = _char_ranges(char_scripts)
    if not chars:
        return re.compile(r"\w+")
    return re.compile(rf"[{chars}]|[^\W{chars}]+")


def make_char_pattern(char_scripts: Iterable[str] = DEFAULT_CHAR_SCRIPTS) -> re.Pattern[str] | None:
    """Regex matching one character of `char_scripts` (None when there are none)."""
    chars = _char_ranges(char_scripts)
    return re.compile(f"[{chars}]") if chars else None


def _char_ranges(char_scripts: Iterable[str]) -> str:
    unknown = set(char_scripts) - set(SCRIPT_RANGES)
    if unknown:
        raise ValueError(f"unknown script(s) {sorted(unknown)}; known: {sorted(SCRIPT_RANGES)}")
    return "".join(SCRIPT_RANGES[s] for s in char_scripts)


def tokenize(text: str, pattern: re.Pattern[str], normalize_numbers: bool = True) -> list[str]:
    """NFKC + lowercase (+ digit runs to "0"), then the tokens of `pattern`."""
    t = unicodedata.normalize("NFKC", text).lower()
    if normalize_numbers:
        t = _DIGITS.sub("0", t)
    return pattern.findall(t)


def char_token_count(text: str, char_pattern: re.Pattern[str] | None) -> int:
    """Characters of the per-character scripts in `text` (0 fast when there are none)."""
    if char_pattern is None or char_pattern.search(text) is None:
        return 0
    return len(char_pattern.findall(text))


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (Steele et al. 2014): spreads every input bit over the output (uint64, wraps)."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def token_hashes(tokens: list[str], seed: int = 0) -> np.ndarray:
    import xxhash

    return np.fromiter(
        (xxhash.xxh3_64_intdigest(t, seed) for t in tokens) if seed else map(xxhash.xxh3_64_intdigest, tokens),
        dtype=np.uint64,
        count=len(tokens),
    )


def ngram_hashes(h: np.ndarray, n: int) -> np.ndarray:
    """uint64 hash of every run of n consecutive token hashes (order-sensitive), len(h) - n + 1 values."""
    m = len(h) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    s = h[:m].copy()
    for k in range(1, n):
        s *= _FOLD
        s += h[k : k + m]
    return mix64(s)


def batch_shingles(token_lists: list[list[str]], n: int | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of a batch of documents: (uint64 shingle hashes, int64 index of their document), doc-sorted.

    Args:
        token_lists: the tokens of each document.
        n: shingle length, one for all documents or one per document.

    A document with fewer than n tokens (but at least one) gets one shingle of all its tokens; a document
    without tokens gets none.
    """
    ns = np.full(len(token_lists), n, dtype=np.int64) if isinstance(n, int) else np.asarray(n, dtype=np.int64)
    parts_sh, parts_doc = [], []
    for nv in np.unique(ns).tolist():
        sel = np.flatnonzero(ns == nv)
        sh, doc = _shingles_fixed_n([token_lists[i] for i in sel], nv)
        parts_sh.append(sh)
        parts_doc.append(sel[doc])
    if len(parts_sh) == 1:
        return parts_sh[0], parts_doc[0]
    sh, doc = np.concatenate(parts_sh), np.concatenate(parts_doc)
    order = np.argsort(doc, kind="stable")
    return sh[order], doc[order]


def _shingles_fixed_n(token_lists: list[list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = [tok for toks in token_lists for tok in toks]
    h = token_hashes(flat)
    doc_of_tok = np.repeat(np.arange(len(token_lists), dtype=np.int64), lens)
    s = ngram_hashes(h, n)
    m = len(s)
    valid = doc_of_tok[:m] == doc_of_tok[n - 1 : n - 1 + m] if m else np.zeros(0, bool)
    sh, doc = s[valid], doc_of_tok[:m][valid]
    short = np.flatnonzero((lens > 0) & (lens < n))
    if len(short):
        starts = np.concatenate([[0], np.cumsum(lens)])
        extra = np.array([ngram_hashes(h[starts[d] : starts[d + 1]], int(lens[d]))[0] for d in short], np.uint64)
        sh, doc = np.concatenate([sh, extra]), np.concatenate([doc, short])
        order = np.argsort(doc, kind="stable")
        sh, doc = sh[order], doc[order]
    return sh, doc


class MinHasher:
    """K multiply-add-shift hash functions and the per-document minimum over a batch."""

    def __init__(self, num_hashes: int, seed: int, chunk_rows: int = 32768) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64, endpoint=False) | _U64(1)
        self.b = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64, endpoint=False)
        self.num_hashes = num_hashes
        self.chunk_rows = chunk_rows

    def signatures(self, shingles: np.ndarray, doc: np.ndarray, num_docs: int) -> np.ndarray:
        """(num_docs, K) uint32 minhashes; rows of documents without shingles stay at 2^32 - 1."""
        sig = np.full((num_docs, self.num_hashes), np.iinfo(np.uint32).max, dtype=np.uint32)
        buf = np.empty((self.chunk_rows, self.num_hashes), dtype=np.uint64)
        for r0 in range(0, len(shingles), self.chunk_rows):
            x = shingles[r0 : r0 + self.chunk_rows]
            d = doc[r0 : r0 + self.chunk_rows]
            hb = buf[: len(x)]
            np.multiply(x[:, None], self.a[None, :], out=hb)
            hb += self.b
            hb >>= _U64(32)
            starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
            mins = np.minimum.reduceat(hb, starts, axis=0).astype(np.uint32)
            rows = d[starts]
            sig[rows] = np.minimum(sig[rows], mins)
        return sig


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(D, bands) uint64: the r minhashes of each band folded and mixed into one key."""
    s = sig[:, : bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    key = s[:, :, 0].copy()
    for j in range(1, rows):
        key *= _FOLD
        key += s[:, :, j]
    return mix64(key)


class MinHashDedup:
    """Near-duplicate clusters by MinHash-LSH; the first document of each cluster survives.

    Defaults: word 5-grams (FineWeb's shingles) with numbers kept, 112 hashes as 28 bands x 4 rows, candidate
    pairs verified at estimated Jaccard >= 0.7 (issue 11; measured by `benchmarks/bench_neardup.py` on the
    hard-negative pairs of `dedup.pairs`):

    - numbers kept: with digit runs as "0" (datatrove's `simplify_text`) two problems that differ only in their
      constants are identical (Jaccard 1.0) and are merged by any threshold; every such pair of the set was.
    - 0.7: the lower end of the anchors' 0.7-0.8 (FineWeb's 14 x 8 S-curve sits at ~0.72, text-dedup's default
      threshold is 0.7). The old 0.4 merged different problems sharing a template (precision 0.70 on the set);
      0.7 gives 0.983 with recall 1.000 at Jaccard >= 0.8; 0.75 gains little precision (0.989) and loses
      short template-spam pages whose byline changed (recall 0.962 -> 0.917).
    - 28 x 4 only generates candidates (S-curve ~0.43, P(candidate) 0.9996 at s=0.7), so the verification
      threshold, not the banding, decides; 14 x 8 makes a pair a candidate with P 0.92 at s=0.8 and 0.57 at
      s=0.7 (template-spam recall 0.928 at the same verification).

    `MinHashDedup.fineweb()` gives FineWeb's setting (Penedo et al. 2024, arXiv 2406.17557).

    Args:
        ngram: shingle length in tokens.
        num_bands: LSH bands (b).
        rows_per_band: minhashes per band (r); the signature has b x r hashes.
        seed: seed of the hash functions (same seed, same signatures).
        char_scripts: scripts tokenised per character (see `SCRIPT_RANGES`); () for words only.
        char_ngram: shingle length for documents whose tokens are mostly such characters. 12 characters is
            ~5-8 Chinese or ~3-4 Thai words; at 5 characters the Osaka and Tokyo Japanese UDHR translations
            (different texts) share 62% of their shingles, at 12 only 30%.
        normalize_numbers: map digit runs to "0" before shingling (datatrove's default; off here because it
            makes "the same problem with other constants" identical).
        min_jaccard: verify each candidate pair by the fraction of equal minhashes; None keeps every
            candidate (plain LSH, as datatrove).
        workdir: where band files go (a fresh temporary directory inside it, removed when done).
        max_memory_mb: bound on buffers, batches and sorts; beyond it band keys are partitioned on disk (tiny
            values, e.g. 0.05, are for tests that force the on-disk path).
    """

    name = "minhash_dedup"

    def __init__(
        self,
        ngram: int = 5,
        num_bands: int = 28,
        rows_per_band: int = 4,
        seed: int = 1,
        char_scripts: Iterable[str] = DEFAULT_CHAR_SCRIPTS,
        char_ngram: int = 12,
        normalize_numbers: bool = False,
        min_jaccard: float | None = 0.7,
        workdir: Path | None = None,
        max_memory_mb: float = 1024,
    ) -> None:
        if ngram < 1 or num_bands < 1 or rows_per_band < 1:
            raise ValueError(f"ngram, num_bands, rows_per_band must be >= 1: {ngram}, {num_bands}, {rows_per_band}")
        if min_jaccard is not None and not 0.0 < min_jaccard <= 1.0:
            raise ValueError(f"min_jaccard must be in (0, 1] or None, got {min_jaccard}")
        if max_memory_mb <= 0:
            raise ValueError(f"max_memory_mb must be > 0, got {max_memory_mb}")
        self.ngram = ngram
        self.num_bands = num_bands
        self.rows_per_band = rows_per_band
        self.num_hashes = num_bands * rows_per_band
        self.seed = seed
        self.char_scripts = tuple(char_scripts)
        self.pattern = make_tokenizer(self.char_scripts)
        self.char_pattern = make_char_pattern(self.char_scripts)
        self.char_ngram = char_ngram
        self.normalize_numbers = normalize_numbers
        self.min_jaccard = min_jaccard
        self.workdir = workdir
        self.max_memory_mb = max_memory_mb
        budget = max_memory_mb * 2**20
        # A quarter of the budget for a batch: text + token lists (~80 B/token) + the hash chunk.
        self.batch_chars = int(max(20_000, budget / 4 / 64))
        self.chunk_rows = int(min(32768, max(256, budget // 8 // (self.num_hashes * 8 * 2))))

    @classmethod
    def fineweb(cls, **kwargs: object) -> MinHashDedup:
        """FineWeb's setting: word 5-grams, digit runs -> "0", 14 bands x 8 rows, no verification (Penedo et al.
        2024)."""
        kwargs.setdefault("normalize_numbers", True)
        return cls(ngram=5, num_bands=14, rows_per_band=8, min_jaccard=None, **kwargs)  # type: ignore[arg-type]

    def describe(self) -> str:
        p = {s: expected_candidate_probability(s, self.num_bands, self.rows_per_band) for s in (0.5, 0.7, 0.8)}
        scripts = ",".join(self.char_scripts) or "none"
        verify = f"verified at est. Jaccard >= {self.min_jaccard}" if self.min_jaccard else "no verification"
        return (
            f"{self.name}: {self.ngram}-gram word shingles ({self.char_ngram}-gram char shingles for docs mostly in "
            f"{scripts}; numbers "
            f"{'->0' if self.normalize_numbers else 'kept'}), {self.num_bands} bands x {self.rows_per_band} rows = "
            f"{self.num_hashes} hashes, seed {self.seed}, {verify}; LSH threshold ~"
            f"{lsh_threshold(self.num_bands, self.rows_per_band):.2f}; P(candidate) = 1-(1-s^r)^b: "
            f"s=0.5 {p[0.5]:.3f}, s=0.7 {p[0.7]:.3f}, s=0.8 {p[0.8]:.3f}"
        )

    def memory_estimate(self, num_docs: int) -> str:
        sig_bytes = num_docs * self.num_hashes * 4
        sig_in_ram = self.min_jaccard is not None and sig_bytes <= self.max_memory_mb * 2**20 // 2
        ram = 4 * num_docs + self.max_memory_mb * 2**20
        disk = num_docs * (self.num_bands * 12 + (sig_bytes // max(num_docs, 1) if self.min_jaccard else 0) + 40)
        return (
            f"{self.name}: ~{format_bytes(ram)} RAM (union-find 4 B/doc + {self.max_memory_mb} MiB buffers"
            f"{', signatures memory-mapped' if self.min_jaccard and not sig_in_ram else ''}) + ids of duplicated "
            f"docs; disk ~{format_bytes(disk)} (band keys 12 B/doc/band, signatures, ids) for {num_docs} docs"
        )

    def shingles(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shingle hashes, their doc index, bool per doc: has tokens) for a batch of texts."""
        toks = [tokenize(t, self.pattern, self.normalize_numbers) for t in texts]
        ns = [
            self.char_ngram if 2 * char_token_count(t, self.char_pattern) >= len(tk) > 0 else self.ngram
            for t, tk in zip(texts, toks)
        ]
        sh, doc = batch_shingles(toks, ns)
        return sh, doc, np.fromiter((len(t) > 0 for t in toks), dtype=bool, count=len(toks))

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), K) uint32 minhash signatures (exposed for tests and benchmarks)."""
        sh, doc, _ = self.shingles(texts)
        return MinHasher(self.num_hashes, self.seed, self.chunk_rows).signatures(sh, doc, len(texts))

    def min_equal_hashes(self) -> int:
        """Equal minhashes (of `num_hashes`) a verified candidate pair needs: ceil(min_jaccard x K); 0 without
        verification."""
        if self.min_jaccard is None:
            return 0
        return int(np.ceil(self.min_jaccard * self.num_hashes - 1e-9))

    def pair_matches(self, sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
        """Row-aligned (n, K) signatures -> bool per row: the two documents would be joined (one equal band key,
        then the verification), as `find_duplicates` decides one candidate pair (for evaluation on pairs)."""
        b, r = self.num_bands, self.rows_per_band
        cand = (band_keys(sig_a, b, r) == band_keys(sig_b, b, r)).any(axis=1)
        # A document without tokens keeps the all-(2^32 - 1) row and is never a candidate (as in `_run`).
        has = (sig_a != np.iinfo(np.uint32).max).any(axis=1) & (sig_b != np.iinfo(np.uint32).max).any(axis=1)
        return cand & has & (np.count_nonzero(sig_a == sig_b, axis=1) >= self.min_equal_hashes())

    def find_duplicates(self, docs: Iterable[tuple[str, str]]) -> DupResult:
        """Pass 1 over `(doc_id, text)` pairs in stream order; returns the decisions for duplicated docs."""
        wd = Workdir(self.workdir, "minhash")
        try:
            return self._run(docs, wd.path)
        finally:
            wd.close()

    def _run(self, docs: Iterable[tuple[str, str]], wd: Path) -> DupResult:
        hasher = MinHasher(self.num_hashes, self.seed, self.chunk_rows)
        sort_mb = self.max_memory_mb / 2
        buffer_mb = self.max_memory_mb / 8 / self.num_bands
        spills = [KeySpill(wd / f"band_{b:03d}.bin", False, sort_mb, buffer_mb) for b in range(self.num_bands)]
        ids = IdSpill(wd / "ids.txt")
        sig_path = wd / "signatures.u32"
        verify = self.min_jaccard is not None
        sig_file = open(sig_path, "wb") if verify else None
        n = 0
        batch: list[str] = []
        chars = 0

        def flush() -> None:
            nonlocal n, batch, chars
            sh, doc, has_tokens = self.shingles(batch)
            sig = hasher.signatures(sh, doc, len(batch))
            has = np.flatnonzero(has_tokens)
            keys = band_keys(sig[has], self.num_bands, self.rows_per_band)
            idx = (has + n).astype(np.uint32)
            for b, spill in enumerate(spills):
                spill.append(keys[:, b], idx)
            if sig_file is not None:
                sig.tofile(sig_file)
            n += len(batch)
            batch, chars = [], 0

        for doc_id, text in docs:
            ids.append(doc_id)
            batch.append(text)
            chars += len(text)
            if chars >= self.batch_chars:
                flush()
        if batch:
            flush()
        if n >= 2**32 - 1:
            raise ValueError(f"{n} documents: more than the uint32 doc index allows; shard the input")
        sigs = None
        if sig_file is not None:
            sig_file.close()
            if n * self.num_hashes * 4 <= self.max_memory_mb * 2**20 // 2:
                sigs = np.fromfile(sig_path, dtype=np.uint32).reshape(n, self.num_hashes)
            elif n:  # larger than the budget: the OS pages it in and out
                sigs = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(n, self.num_hashes))
        uf = UnionFind(n)
        for spill in spills:
            for u, v in spill.edges():
                if sigs is not None and self.min_jaccard is not None:
                    u, v = self._verified(uf, sigs, u, v)
                uf.union(u, v)
            spill.path.unlink(missing_ok=True)
        return build_result(uf.roots(), ids)

    def _verified(self, uf: UnionFind, sigs: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
        """Keep the candidate pairs not yet joined whose estimated Jaccard reaches `min_jaccard`."""
        keep = uf.find(u) != uf.find(v)
        u, v = u[keep], v[keep]
        out_u, out_v = [], []
        step = max(1, int(self.max_memory_mb * 2**20 / 8 / (self.num_hashes * 4 * 3)))
        need = self.min_equal_hashes()
        for i in range(0, len(u), step):
            cu, cv = u[i : i + step], v[i : i + step]
            same = np.count_nonzero(sigs[cu] == sigs[cv], axis=1)
            ok = same >= need
            out_u.append(cu[ok])
            out_v.append(cv[ok])
        if not out_u:
            return u[:0], v[:0]
        return np.concatenate(out_u), np.concatenate(out_v)
