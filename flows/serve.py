"""`python -m flows.serve [--stage S ...] [--cron EXPR]`: serve the stage flows as Prefect deployments.

With a `prefect server` running (PREFECT_API_URL set), this registers one deployment per stage
(`corpusforge-stage/<stage>`) and serves them from this process: runs can then be started or scheduled
from the Prefect UI. On a cluster, point a work pool at these deployments instead (Ray or Slurm through
Prefect's workers or datatrove's executors); nothing here schedules work by itself.
"""

from __future__ import annotations

import argparse
import sys

from flows.stage import stage_flow
from pipeline.config import STAGES


def build_deployments(stages: list[str], out_root: str = "runs", cron: str | None = None,
                      limit: int | None = None) -> list:  # fmt: skip
    """One `RunnerDeployment` per stage, with its run directory and optional schedule as parameters."""
    return [
        stage_flow.to_deployment(
            name=stage,
            parameters={"stage": stage, "out": f"{out_root}/{stage}", "limit": limit},
            cron=cron,
            tags=["corpusforge", stage],
            description=f"corpusforge curriculum stage '{stage}': ingest, filter, dedup, decontaminate, shard.",
        )
        for stage in stages
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0],
                                     epilog="Needs a running `prefect server start` and PREFECT_API_URL.")  # fmt: skip
    parser.add_argument("--stage", action="append", choices=STAGES, help="stage(s) to serve (default: all)")
    parser.add_argument("--out-root", default="runs", help="parent of the run directories (default: runs)")
    parser.add_argument("--cron", help="schedule, e.g. '0 3 * * *' (default: none, start runs from the UI)")
    parser.add_argument("--limit", type=int, help="records per source (quick runs)")
    args = parser.parse_args(argv)
    from prefect import serve

    serve(*build_deployments(args.stage or list(STAGES), args.out_root, args.cron, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
