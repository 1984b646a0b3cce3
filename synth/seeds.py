"""Seed documents for synthetic generation: a seeded, reproducible sample of a finished stage's corpus.

    seeds = sample_seeds("runs/general", n=100, seed=0, domains=["stem"], langs=["en"], min_chars=200)

The corpus is Parquet of `schemas.DOCUMENT_SCHEMA` (Hive partitions such as `domain=web/source=x` are read as
columns). Sampling is by hash order: each document's key is sha256(seed, id) and the `n` smallest keys win.
So the sample depends only on the seed and the set of documents, not on file order or batch size; it streams
the corpus with a bounded heap (memory is `n` documents); and growing `n` keeps the smaller sample as a prefix.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from pathlib import Path

# Names the multilingual template writes into its prompt ("Write only in French"); unknown codes pass through.
LANG_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ru": "Russian",
    "uk": "Ukrainian",
    "pl": "Polish",
    "cs": "Czech",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "no": "Norwegian",
    "tr": "Turkish",
    "el": "Greek",
    "ar": "Arabic",
    "he": "Hebrew",
    "fa": "Persian",
    "hi": "Hindi",
    "bn": "Bengali",
    "ur": "Urdu",
    "ta": "Tamil",
    "th": "Thai",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "ms": "Malay",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "hu": "Hungarian",
    "ro": "Romanian",
    "bg": "Bulgarian",
    "sw": "Swahili",
}


@dataclass(frozen=True)
class Seed:
    """One seed document.

    Args:
        id: the corpus document id (provenance: seed doc id -> template -> model).
        text: its text.
        domain, lang, source: as in the corpus.
    """

    id: str
    text: str
    domain: str
    lang: str | None = None
    source: str = ""

    @property
    def lang_name(self) -> str:
        """The language's English name for prompts ("French"), the code itself if unknown, "English" if None."""
        if not self.lang:
            return "English"
        return LANG_NAMES.get(self.lang.split("-")[0].split("_")[0].lower(), self.lang)


def corpus_dir(path: Path | str) -> Path:
    """The documents' Parquet folder of a run: `path/corpus/docs` (a run directory), `path/docs` (its corpus), or
    `path` itself (a folder of documents). Never a folder that also holds lineage or step files."""
    p = Path(path)
    for cand in (p / "corpus" / "docs", p / "docs", p):
        if cand.is_dir() and any(cand.rglob("*.parquet")):
            return cand
    raise FileNotFoundError(
        f"no corpus Parquet under {p} (looked in {p / 'corpus' / 'docs'}, {p / 'docs'}, {p}); "
        "run the stage first: python -m flows.stage <stage>"
    )


def sample_key(seed: int, doc_id: str) -> bytes:
    """A document's place in the seeded hash order: sha256(seed, id). The sample is the smallest keys."""
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode()).digest()


def sample_seeds(
    corpus: Path | str | list[Path],
    n: int,
    seed: int = 0,
    domains: list[str] | None = None,
    langs: list[str] | None = None,
    min_chars: int = 0,
    max_chars: int | None = None,
    batch_rows: int = 4096,
) -> list[Seed]:
    """Up to `n` documents of the corpus that match the filters, in hash order (reproducible).

    Args:
        corpus: a run directory, a Parquet folder of DOCUMENT_SCHEMA rows, or a list of such folders without
            partitions (a step's unit outputs).
        n: how many seeds.
        seed: sampling seed.
        domains: keep only these domains (None: all).
        langs: keep only these language codes (None: all).
        min_chars, max_chars: text length bounds (characters).
        batch_rows: rows read per batch (bounds memory with `n`).
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if isinstance(corpus, list):
        root: Path | str = f"{len(corpus)} folders"
        files = [str(f) for d in corpus for f in sorted(Path(d).rglob("*.parquet"))]
        if not files:
            return []
        dataset = ds.dataset(files, format="parquet")
    else:
        root = corpus_dir(corpus)
        dataset = ds.dataset(root, format="parquet", partitioning="hive")
    names = set(dataset.schema.names)
    missing = {"id", "text", "domain"} - names
    if missing:
        raise ValueError(f"{root}: not a corpus of DOCUMENT_SCHEMA (missing columns {sorted(missing)})")
    cols = [c for c in ("id", "text", "domain", "lang", "source") if c in names]
    expr = None
    if domains:
        expr = pc.field("domain").isin(domains)
    if langs:
        e = pc.field("lang").isin(langs)
        expr = e if expr is None else expr & e
    seen: set[str] = set()
    heap: list[tuple[bytes, str, Seed]] = []  # max-heap on key via negated bytes is awkward: keep (−) by inversion
    for batch in dataset.to_batches(columns=cols, filter=expr, batch_size=batch_rows):
        rows = batch.to_pydict()
        for i, doc_id in enumerate(rows["id"]):
            text = rows["text"][i]
            if text is None or len(text) < min_chars or (max_chars is not None and len(text) > max_chars):
                continue
            if doc_id in seen:  # the same document twice (two copies of a file): one seed
                continue
            seen.add(doc_id)
            k = sample_key(seed, doc_id)
            inv = bytes(255 - b for b in k)  # heapq is a min-heap: the inverted key puts the largest key on top
            if len(heap) < n:
                heapq.heappush(heap, (inv, doc_id, _seed(rows, i)))
            elif n and inv > heap[0][0]:
                heapq.heapreplace(heap, (inv, doc_id, _seed(rows, i)))
    return [s for _, _, s in sorted(heap, key=lambda t: sample_key(seed, t[1]))]


def _seed(rows: dict, i: int) -> Seed:
    return Seed(
        id=rows["id"][i],
        text=rows["text"][i],
        domain=str(rows["domain"][i]),
        lang=rows["lang"][i] if "lang" in rows else None,
        source=str(rows["source"][i]) if "source" in rows else "",
    )
