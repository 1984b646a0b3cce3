"""The fastText scorer's cost in the filter step (issue 20: it may add at most 10%): the general stage's filter chain
over the embedded default sources (configs/sources/default.toml: every document its readers give), CPU time with
and without one `[scorers.<name>]` in annotate mode, each run on fresh copies of the documents after a warm-up
batch (models loaded), median of `--repeats`.

The classifier is any folder `python -m flows.classify train` wrote (`--model CLS_DIR`); its size (dim, bucket) is
what decides the scorer's cost, so train it with the arguments you would ship.

Usage: flock /tmp/cf-bench.lock .venv/bin/python -m benchmarks.bench_scorer --model CLS_DIR [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

from core.paths import REPO_ROOT, STAGES_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="a classifier folder (model.bin + card.json)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, help="at most this many documents per source")
    args = parser.parse_args()

    from core.stage_files import read_stage_file
    from filters.base import run_chain
    from filters.chain import build_chain
    from filters.scorer import with_scorers
    from ingest.readers import read_source
    from ingest.sources import load_sources
    from schemas import Document
    from scoring.config import ScorerConfig

    specs = load_sources(REPO_ROOT / "configs" / "sources" / "default.toml")
    docs = [r for s in specs for r in read_source(s, args.limit) if isinstance(r, Document)]
    filters = read_stage_file(STAGES_DIR / "general.toml")[0].get("filters", {})
    scorer = ScorerConfig.from_table("bench", "edu", {"model": str(args.model.resolve())}, Path.cwd())
    chains = {"filters": build_chain(filters)}
    chains["filters + scorer"] = with_scorers(chains["filters"], [scorer])
    for chain in chains.values():  # warm-up: language ID, toxicity and the classifier load here
        list(run_chain(copy.deepcopy(docs[:256]), chain, []))
    cpu: dict[str, list[float]] = {name: [] for name in chains}
    for _ in range(args.repeats):
        for name, chain in chains.items():
            batch = copy.deepcopy(docs)
            t0 = time.process_time()
            kept = sum(1 for _ in run_chain(batch, chain, []))
            cpu[name].append(time.process_time() - t0)
    alone = []
    for _ in range(args.repeats):  # the scorer by itself on every document: an upper bound of what it adds
        model = chains["filters + scorer"][[s.name for s in chains["filters + scorer"]].index("scorer_edu")]
        t0 = time.process_time()
        model.filter_batch(docs)
        alone.append(time.process_time() - t0)
    base, scored = (statistics.median(cpu[n]) for n in chains)
    mb = sum(len(d.text.encode()) for d in docs) / 2**20
    card = json.loads((args.model / "card.json").read_text())
    print(
        f"{len(docs):,} documents, {mb:.1f} MB, {kept:,} kept; classifier dim {card['params']['dim']}, "
        f"bucket {card['params']['bucket']:,}"
    )
    for name in chains:
        print(f"{name:18} CPU s median {statistics.median(cpu[name]):7.2f}  runs {[round(c, 2) for c in cpu[name]]}")
    print(f"scorer adds {100 * (scored - base) / base:+.1f}% to the filter chain's CPU time (difference of medians)")
    print(
        f"scorer alone on every document: CPU s median {statistics.median(alone):.3f} = "
        f"{100 * statistics.median(alone) / base:.1f}% of the chain's"
    )


if __name__ == "__main__":
    main()
