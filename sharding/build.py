"""`python -m sharding.build`: a stage's final corpus -> packed uint32 shards, placements index, manifest, exports.

The work is `sharding/steps.py`'s (tokenize, shard_plan and shards steps, run as work units); this module is
its command line and `build_stage_shards`, the same build from a corpus folder into a shards folder (tests,
benchmarks, a corpus made elsewhere), with `ShardsLayout`, the layout of such a build.

CLI: `python -m sharding.build general [--dry-run] [--workers N]` builds `runs/general/shards/general/` from
`runs/general/corpus/docs` inside the stage's run (its steps are reused); with `--corpus DIR --out DIR` it reads
DIR and writes `<out>/<stage>/`, keeping its work units in `<out>/.work/<stage>/`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.stage_files import read_stage_file
from pipeline.executors import Executor, InlineExecutor, make_executor
from pipeline.layout import RunLayout
from pipeline.runner import run_step
from sharding.config import ShardsConfig
from sharding.steps import PLACEMENT_SCHEMA, build_shards

__all__ = ["PLACEMENT_SCHEMA", "ShardsConfig", "build_stage_shards", "load_stage_tables", "main", "shards_layout"]


@dataclass(frozen=True)
class ShardsLayout(RunLayout):
    """The layout of a shard build outside a stage run (`python -m sharding.build --corpus C --out O`): the
    corpus is `docs`, the shards go to `out/<stage>/`, the work units under `root`."""

    docs: Path = Path("corpus/docs")
    out: Path = Path("shards")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "docs", Path(self.docs).resolve())
        object.__setattr__(self, "out", Path(self.out).resolve())

    @property
    def corpus_docs(self) -> Path:
        return self.docs

    @property
    def shards_root(self) -> Path:
        return self.out


def shards_layout(corpus_docs_dir: Path, out_dir: Path, stage: str) -> ShardsLayout:
    """A layout that reads `corpus_docs_dir` and publishes `out_dir/<stage>/`, work units in `out_dir/.work/<stage>`."""
    return ShardsLayout(Path(out_dir) / ".work" / stage, docs=Path(corpus_docs_dir), out=Path(out_dir))


def build_stage_shards(
    corpus_docs_dir: Path,
    out_dir: Path,
    stage: str,
    mixture_cfg: dict,
    shards_cfg: dict,
    dry_run: bool = False,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """`build_shards` from a corpus folder into `out_dir/<stage>/` (see `shards_layout`).

    Args:
        corpus_docs_dir: Hive-partitioned Parquet of DOCUMENT_SCHEMA rows (read in sorted path order).
        out_dir: shards root; writes `out_dir/<stage>/manifest.json` and its files.
        stage, mixture_cfg, shards_cfg, dry_run: as `sharding.steps.build_shards`.
        executor: where the units run (default: this process).
    """
    layout = shards_layout(corpus_docs_dir, out_dir, stage)
    executor = executor or InlineExecutor()
    return build_shards(
        layout, stage, mixture_cfg, shards_cfg, lambda step: run_step(step, layout, executor), dry_run=dry_run
    )


def load_stage_tables(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `[mixture]` and `[shards]` tables of a stage config file, merged on its base file (`base = ...`)."""
    data, _ = read_stage_file(Path(config_path))
    return data.get("mixture", {}), data.get("shards", {})


def main(argv: list[str] | None = None) -> int:
    from core.io import run_lock
    from core.paths import STAGES, STAGES_DIR

    parser = argparse.ArgumentParser(prog="python -m sharding.build", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--corpus", type=Path, help="final corpus docs (default: runs/<stage>/corpus/docs)")
    parser.add_argument("--out", type=Path, help="shards root (default: runs/<stage>/shards)")
    parser.add_argument("--config", type=Path, help="stage config (default: configs/stages/<stage>.toml)")
    parser.add_argument("--num-proc", type=int, help="tokenizer threads per unit (overrides [shards] num_proc)")
    parser.add_argument("--workers", type=int, default=1, help="processes that run the units (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the token budget per source; write nothing")
    args = parser.parse_args(argv)
    mixture, shards = load_stage_tables(args.config or STAGES_DIR / f"{args.stage}.toml")
    if args.num_proc:
        shards = {**shards, "num_proc": args.num_proc}
    run = RunLayout(Path("runs") / args.stage)
    if args.corpus is None and args.out is None:
        layout: RunLayout = run  # the stage run's own layout: its tokenize units are reused
    else:
        layout = shards_layout(args.corpus or run.corpus_docs, args.out or run.shards_root, args.stage)
    if not layout.corpus_docs.is_dir():
        print(
            f"error: corpus {layout.corpus_docs} not found; run `python -m flows.stage {args.stage}` first",
            file=sys.stderr,
        )
        return 2
    try:
        if args.dry_run:
            build_shards(layout, args.stage, mixture, shards, lambda step: run_step(step, layout), dry_run=True)
            return 0
        with run_lock(layout.root), make_executor("local", args.workers) as executor:
            stats = build_shards(layout, args.stage, mixture, shards, lambda step: run_step(step, layout, executor))
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{stats['manifest']}: {stats['num_shards']} shards, {stats['num_sequences']:,} sequences of "
        f"{stats['seq_len']:,}, {stats['total_tokens']:,} tokens{' (up to date)' if stats['skipped'] else ''}"
    )
    for warning in stats["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
