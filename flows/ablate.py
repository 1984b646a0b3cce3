"""`python -m flows.ablate (--candidates RUNS [--mixtures FILE] | --mixtures FILE | --run RUN) --tokens N [...]`:
train the bundled MoE as a proxy on each candidate corpus under one token budget and score it (issue 21).

A candidate is a finished stage run folder (its `shards/<stage>/manifest.json`), a manifest path, or `NAME=` either;
or, with `--mixtures FILE`, a named mixture over one run's domains and sources (ablate/mixtures.py); both together,
every mixture of the file realised on every candidate's run (`<run>.<mixture>`, scored on each run's held-out
slices `heldout:<run>:<domain>`), which compares runs at one composition. `--search K`
adds K mixtures drawn from a seeded Dirichlet over the run's domains (or `--search-over sources`), fits a
regression from their shares to held-out bits per byte and writes the best predicted mixture as a stage's
`[mixture]` table, `DIR/mixture.toml` (RegMix; ablate/search.py); `--run RUN` names the run when there is no file.
The work is `ablate.run.run_ablation`'s; this is its command line and its Prefect flow (`corpusforge-ablate`, the
`ablate` deployment of flows/deployments.toml). Results: `DIR/results.parquet` (one row per candidate, seed and
evaluation set), `DIR/curves.parquet`, `DIR/report.html`, and the `ablations` view of
`python -m flows.query --out DIR`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from ablate.config import (
    DEFAULT_EVAL,
    DEFAULT_PROXY,
    HELDOUT,
    SEARCH_OVER,
    AblationConfig,
    AblationConfigError,
    SearchConfig,
    resolve_candidate,
)

DEFAULT_OUT = "runs/ablations/latest"


def build_config(
    tokens: int,
    out: str = DEFAULT_OUT,
    candidates: str | None = None,
    mixtures: str | None = None,
    run: str | None = None,
    search: int = 0,
    search_over: str = "domains",
    search_seed: int = 0,
    search_target: str = HELDOUT,
    proxy: str | None = None,
    eval_sets: str | None = None,
    seeds: int = 1,
    eval_items: int = 200,
    heldout_fraction: float = 0.05,
) -> AblationConfig:
    """The ablation the command line or the flow asked for, every input checked before any work (the flow's and
    the command line's parameters are this function's).

    Raises:
        AblationConfigError: one line naming the bad value (the command line exits 2 with it).
    """
    from ablate.mixtures import load_mixtures, run_partitions
    from ablate.run import proxy_config
    from ablate.search import check_target, draw_mixtures

    if (candidates is None and mixtures is None) == (run is None):
        raise AblationConfigError(
            "give --candidates RUN_A,RUN_B, --mixtures FILE, both (every mixture on every run), "
            "or --run RUN alone (with --search)"
        )
    if run is not None and not search:
        raise AblationConfigError(
            "--run RUN names the run of a --search K; without one, use --candidates or --mixtures"
        )
    chosen: tuple[Any, ...] = ()
    search_cfg = None
    if candidates is not None:
        if search:
            raise AblationConfigError(
                "--search mixes one run's corpus: give --mixtures FILE (without --candidates) or --run RUN"
            )
        specs = [c.strip() for c in candidates.split(",") if c.strip()]
        if mixtures is not None:  # every mixture realised on every candidate's run
            chosen = load_mixtures(Path(mixtures), specs)[1]
        else:
            chosen = tuple(resolve_candidate(c) for c in specs)
    else:
        run_dir, chosen = load_mixtures(Path(mixtures)) if mixtures is not None else (Path(run).resolve(), ())
        partitions = run_partitions(run_dir)
        if search:
            search_cfg = SearchConfig(search, run_dir, search_over, search_seed, search_target)
            chosen += draw_mixtures(search_cfg, partitions)
    eval_names = tuple(s.strip() for s in (eval_sets or ",".join(DEFAULT_EVAL)).split(",") if s.strip())
    cfg = AblationConfig(
        candidates=chosen,
        tokens=tokens,
        out=Path(out),
        proxy=Path(proxy) if proxy else DEFAULT_PROXY,
        eval_sets=eval_names,
        seeds=seeds,
        eval_items=eval_items,
        heldout_fraction=heldout_fraction,
        search=search_cfg,
    )
    if search_cfg is not None:
        check_target(search_cfg, eval_names, partitions)
    proxy_config(cfg)  # the proxy config's own checks, before any candidate is read
    return cfg


@flow(name="corpusforge-ablate", log_prints=True)
def ablate_flow(
    tokens: int = 2_000_000,
    out: str = DEFAULT_OUT,
    candidates: str | None = None,
    mixtures: str | None = None,
    run: str | None = None,
    search: int = 0,
    search_over: str = "domains",
    search_seed: int = 0,
    search_target: str = HELDOUT,
    proxy: str | None = None,
    eval_sets: str | None = None,
    seeds: int = 1,
    eval_items: int = 200,
    heldout_fraction: float = 0.05,
) -> dict[str, Any]:
    """Proxy ablation: train and score every candidate, fit the search when asked, write the report page.

    Args:
        tokens: training tokens per proxy (proxy tokenizer).
        out: the ablation folder.
        candidates: comma-separated finished run folders or manifests (NAME=PATH); and/or
        mixtures: a mixtures file (named mixtures over one run's corpus; with `candidates`, over each of theirs); or
        run: the run a search mixes (with `search` and no mixtures file).
        search: K mixtures drawn from a seeded Dirichlet, a regression and a proposed `[mixture]` (0: none).
        search_over: domains | sources.
        search_seed: the Dirichlet's seed.
        search_target: "heldout" (mean over the run's held-out slices) or an evaluation set's name.
        proxy: the proxy's trainer config (default configs/trainer/proxy_cpu.toml).
        eval_sets: comma-separated evaluation sets (default: the shipped ones and heldout).
        seeds: proxies per candidate.
        eval_items: items per evaluation set (and held-out documents per slice).
        heldout_fraction: share of documents held out.
    """
    params = dict(locals())  # the parameters, before anything else is bound
    from ablate.run import run_ablation
    from report.ablation import build_ablation_report

    logger = get_run_logger()
    cfg = build_config(**params)
    table = run_ablation(cfg, log=logger.info)
    page = build_ablation_report(cfg.out)
    logger.info("report: %s", page)
    proposal = cfg.out / "mixture.toml" if cfg.search is not None else None
    return {"out": str(cfg.out), "rows": table.num_rows, "report": str(page), "proposal": proposal and str(proposal)}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.ablate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--candidates", help="comma-separated run folders or manifests (NAME=PATH); with --mixtures, the runs mixed"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--mixtures", help="a TOML file of named mixtures over one run's corpus (ablate/mixtures.py)")
    which.add_argument("--run", help="the finished run a --search mixes, when no --mixtures file names it")
    parser.add_argument("--tokens", required=True, type=int, help="training tokens per proxy (proxy tokenizer)")
    parser.add_argument("--search", type=int, default=0, metavar="K", help="K Dirichlet-drawn mixtures, RegMix fit")
    parser.add_argument("--search-over", choices=SEARCH_OVER, default="domains", help="(default: %(default)s)")
    parser.add_argument("--search-seed", type=int, default=0, help="the Dirichlet's seed (default 0)")
    parser.add_argument("--search-target", default=HELDOUT, help="bits per byte to minimise (default: %(default)s)")
    parser.add_argument("--proxy", default=str(DEFAULT_PROXY), help="proxy trainer config (default: %(default)s)")
    parser.add_argument("--eval", default=",".join(DEFAULT_EVAL), help="evaluation sets (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1, help="proxies per candidate (seeds 0..K-1; default 1)")
    parser.add_argument("--eval-items", type=int, default=200, help="items per evaluation set (default 200)")
    parser.add_argument("--heldout-fraction", type=float, default=0.05, help="share held out (default 0.05)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="ablation folder (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        cfg = build_config(
            args.tokens,
            args.out,
            args.candidates,
            args.mixtures,
            args.run,
            args.search,
            args.search_over,
            args.search_seed,
            args.search_target,
            args.proxy,
            args.eval,
            args.seeds,
            args.eval_items,
            args.heldout_fraction,
        )
    except (AblationConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ablate.run import run_ablation, summary_table
    from report.ablation import build_ablation_report

    table = run_ablation(cfg)
    print(summary_table(table))
    if cfg.search is not None:
        print(f"proposed mixture: {cfg.out / 'mixture.toml'} (the fit: {cfg.out / 'search.json'})")
    print(f"report: {build_ablation_report(cfg.out)}")
    print(f'results: {cfg.out / "results.parquet"} (python -m flows.query --out {cfg.out} "SELECT * FROM ablations")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
