"""Near-duplicate precision and recall by true Jaccard, with hard negatives (issue 11).

Pairs: `dedup.pairs.build_pairs` (pip-shipped GSM8K / MATH / MBPP / HumanEval, standard-library functions and
installed licence texts; positives are copies with small edits, negatives are different problems from one
template, sibling functions and shared boilerplate). True Jaccard: exact 5-gram Jaccard under the new default's
tokenisation (numbers kept). Every pair is decided on its own (one candidate pair, as the dedup run decides it).

Settings:
- ours (new default): `MinHashDedup()`.
- ours (old): digit runs -> "0", 28 bands x 4 rows, verified at estimated Jaccard >= 0.4.
- datatrove FineWeb: datatrove's own `MinhashDedupSignature` shingles and signatures (its `simplify_text`,
  English word tokenizer, 64-bit hashes), 14 buckets x 8 hashes, a pair merged when one bucket's tuple is equal.

Also, for context, the same three on `../shared/corpora/dedup_near_duplicate_pairs` (easy negatives; GSM-Hard's
"same problem, other numbers" counted as positives), when present.

Usage (one benchmark at a time):
    flock /tmp/corpusforge-cpu.lock .venv/bin/python benchmarks/bench_neardup.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dedup.minhash import MinHashDedup  # noqa: E402 - after the path set-up
from dedup.pairs import NEGATIVE_KINDS, POSITIVE_KINDS, Pair, build_pairs  # noqa: E402

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", ROOT.parent / "shared" / "corpora"))
OLD = {"normalize_numbers": True, "num_bands": 28, "rows_per_band": 4, "min_jaccard": 0.4}


def settings() -> dict[str, Callable[[list[Pair]], np.ndarray]]:
    from dedup.pair_scores import predict_datatrove, predict_ours

    new, old = MinHashDedup(), MinHashDedup(**OLD)
    return {
        f"ours new ({new.num_bands}x{new.rows_per_band} @{new.min_jaccard}, numbers "
        f"{'->0' if new.normalize_numbers else 'kept'})": lambda ps: predict_ours(new, ps),
        "ours old (28x4 @0.4, numbers ->0)": lambda ps: predict_ours(old, ps),
        "datatrove FineWeb (14x8)": predict_datatrove,
    }


def _f(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def main() -> None:
    from dedup.pair_scores import JACCARD_BANDS, band_of, score

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=200, help="pairs per kind and source")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    pairs = build_pairs(MinHashDedup(), seed=args.seed, per_kind=args.per_kind)
    print(f"{len(pairs)} pairs ({sum(p.label for p in pairs)} positive) built in {time.perf_counter() - t0:.1f}s\n")
    runs = {}
    for name, fn in settings().items():
        t = time.perf_counter()
        runs[name] = fn(pairs)
        print(f"{name}: decided in {time.perf_counter() - t:.1f}s")

    edges = JACCARD_BANDS + (1.0001,)
    bands = [band_of(lo) for lo in edges[:-1]]
    print("\nBy true Jaccard band (TP = positives merged, FP = hard negatives merged):\n")
    head = "| band | pos | neg |" + "".join(f" {n}: TP / FP / P / R |" for n in runs)
    print(head + "\n|---|---:|---:|" + "---|" * len(runs))
    for band in bands + ["all", ">=0.8"]:
        keep = {
            "all": lambda p: True,
            ">=0.8": lambda p: p.jaccard >= 0.8,
        }.get(band, lambda p, b=band: band_of(p.jaccard) == b)
        cells = []
        for merged in runs.values():
            s = score(pairs, merged, keep)
            cells.append(f" {s.tp} / {s.fp} / {_f(s.precision)} / {_f(s.recall)} |")
        s = score(pairs, runs[next(iter(runs))], keep)
        print(f"| {band} | {s.tp + s.fn} | {s.fp + s.tn} |" + "".join(cells))

    print("\nBy kind (fraction merged; positives should be 1, hard negatives 0):\n")
    print("| kind | label | pairs | median J | J (numbers ->0) |" + "".join(f" {n} |" for n in runs))
    print("|---|---|---:|---:|---:|" + "---:|" * len(runs))
    for kind in POSITIVE_KINDS + NEGATIVE_KINDS:
        sel = np.array([p.kind == kind for p in pairs])
        js = [p.jaccard for p in pairs if p.kind == kind]
        j0 = [p.jaccard_numbers0 for p in pairs if p.kind == kind]
        label = "pos" if kind in POSITIVE_KINDS else "neg"
        cells = "".join(f" {m[sel].mean():.3f} |" for m in runs.values())
        print(f"| {kind} | {label} | {sel.sum()} | {np.median(js):.2f} | {np.median(j0):.2f} |{cells}")

    path = CORPORA / "dedup_near_duplicate_pairs" / "near_dup_pairs.jsonl"
    if not path.is_file():
        print(f"\n(labelled pairs not found at {path}: F1 there not measured)")
        return
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    easy = [Pair(r["source"], bool(r["label"]), r["source"], r["text_a"], r["text_b"]) for r in rows]
    print(f"\nContext: {path.parent.name} ({len(easy)} pairs; easy negatives, GSM-Hard counted positive):\n")
    print("| setting | precision | recall | F1 | gsm_hard recall | socratic recall |\n|---|---:|---:|---:|---:|---:|")
    for name, fn in settings().items():
        merged = fn(easy)
        s = score(easy, merged)
        f1 = 2 * s.tp / (2 * s.tp + s.fp + s.fn)
        hard = score(easy, merged, lambda p: p.kind == "gsm8k~gsm_hard")
        soc = score(easy, merged, lambda p: p.kind == "gsm8k~gsm8k_socratic")
        print(f"| {name} | {_f(s.precision)} | {_f(s.recall)} | {f1:.3f} | {_f(hard.recall)} | {_f(soc.recall)} |")


if __name__ == "__main__":
    main()
