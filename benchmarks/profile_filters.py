"""Profile or time the general stage's filter chain in-process on the whole-stage benchmark's documents.

`python -m benchmarks.profile_filters --docs 3000 [--profile]`: builds the chain that `bench_stage.py` runs (the
four prose filters on every domain; no scorers: they are `filters/scorer.py`'s own benchmark), feeds it
`benchmarks.stage_input.stage_documents(n)` and prints documents/s (medians of `--repeats`), or the top cProfile
rows. `--decisions FILE` writes one `id<TAB>kept-or-reasons` line per document, so two commits can be compared
(`diff`) on the same input.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.stage_input import DOMAINS, GENERAL, PROSE, stage_documents
from core.stage_files import read_stage_file
from filters.base import run_chain
from filters.chain import FILTERS, build_chain
from schemas import Document


def chain_config() -> dict[str, Any]:
    """The prose filters as `stage_input.stage_config` writes them (general.toml's tables, every domain)."""
    base = read_stage_file(GENERAL)[0]["filters"]
    cfg: dict[str, Any] = {name: {"enabled": False} for name in FILTERS}
    for name in PROSE:
        cfg[name] = {**base.get(name, {}), "domains": list(DOMAINS)}
    return cfg


def documents(n: int) -> list[Document]:
    return [Document(i, text, f"bench-{d}", d) for i, d, text in stage_documents(n)]


def run_once(chain: list[Any], n: int) -> tuple[float, list[Any], list[Document]]:
    docs = documents(n)
    lineage: list[Any] = []
    start = time.perf_counter()
    kept = list(run_chain(docs, chain, lineage))
    return time.perf_counter() - start, lineage, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print cProfile's top rows instead of timing")
    ap.add_argument("--decisions", type=Path, help="write each document's decision here")
    args = ap.parse_args()
    chain = build_chain(chain_config())
    run_once(chain, 200)  # warm: tokenizers built, regexes compiled
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_once(chain, args.docs)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
        return
    times = []
    for _ in range(args.repeats):
        seconds, lineage, kept = run_once(chain, args.docs)
        times.append(seconds)
    med = statistics.median(times)
    print(
        f"{args.docs} docs: median {med:.2f} s, {args.docs / med:.0f} docs/s ({', '.join(f'{t:.2f}' for t in times)})"
    )
    if args.decisions:
        rows: dict[str, list[str]] = {}
        for rec in lineage:
            rows.setdefault(rec.doc_id, []).append(f"{rec.action}:{rec.reason}:{rec.score}")
        kept_ids = {d.id: d.text for d in kept}
        with open(args.decisions, "w", encoding="utf-8") as f:
            for doc in documents(args.docs):
                tail = "kept:" + hashlib.sha1(kept_ids[doc.id].encode()).hexdigest()[:12] if doc.id in kept_ids else ""
                f.write(f"{doc.id}\t{'|'.join(rows.get(doc.id, []))}\t{tail}\n")


if __name__ == "__main__":
    main()
