"""`python -m flows.ablate --candidates RUN_A,RUN_B --tokens N [--proxy FILE] [--eval SETS] [--seeds K] [--out DIR]`:
train the bundled MoE as a proxy on each candidate corpus under one token budget and score it (issue 21).

A candidate is a finished stage run folder (its `shards/<stage>/manifest.json`), a manifest path, or `NAME=` either.
The work is `ablate.run.run_ablation`'s; this is its command line. Results: `DIR/results.parquet` (one row per
candidate, seed and evaluation set), `DIR/curves.parquet`, and the `ablations` view of
`python -m flows.query --out DIR`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ablate.config import DEFAULT_EVAL, DEFAULT_PROXY, AblationConfig, AblationConfigError, resolve_candidate


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.ablate", description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", required=True, help="comma-separated run folders or manifests (NAME=PATH)")
    parser.add_argument("--tokens", required=True, type=int, help="training tokens per proxy (proxy tokenizer)")
    parser.add_argument("--proxy", default=str(DEFAULT_PROXY), help="proxy trainer config (default: %(default)s)")
    parser.add_argument("--eval", default=",".join(DEFAULT_EVAL), help="evaluation sets (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1, help="proxies per candidate (seeds 0..K-1; default 1)")
    parser.add_argument("--eval-items", type=int, default=200, help="items per evaluation set (default 200)")
    parser.add_argument("--heldout-fraction", type=float, default=0.05, help="share held out (default 0.05)")
    parser.add_argument("--out", default="runs/ablations/latest", help="ablation folder (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        cfg = AblationConfig(
            candidates=tuple(resolve_candidate(c) for c in args.candidates.split(",") if c.strip()),
            tokens=args.tokens,
            out=Path(args.out),
            proxy=Path(args.proxy),
            eval_sets=tuple(s.strip() for s in args.eval.split(",") if s.strip()),
            seeds=args.seeds,
            eval_items=args.eval_items,
            heldout_fraction=args.heldout_fraction,
        )
        from ablate.run import proxy_config

        proxy_config(cfg)  # the proxy config's own checks, before any candidate is read
    except (AblationConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ablate.run import run_ablation, summary_table

    table = run_ablation(cfg)
    print(summary_table(table))
    print(f'results: {cfg.out / "results.parquet"} (python -m flows.query --out {cfg.out} "SELECT * FROM ablations")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
