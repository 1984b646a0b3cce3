"""`python -m flows.stage <stage>`: run a curriculum stage end to end as a Prefect flow.

The stage itself (`stage/run.py`) is a list of steps made of content-keyed work units; the flow
(`flows/stage_flow.py`) only orchestrates: each unit becomes a mapped Prefect task (so the UI shows them), the task
hands its unit to the executor (`--workers N` local processes, or Ray with `--executor ray`), and retries happen on
I/O errors only. A rerun redoes only the units without a matching completion marker; outputs are byte-identical at
any worker count and with either executor.

Works with no Prefect server (a private temporary one is started, bound to 127.0.0.1, and dies with the run)
and against a running `prefect server start` when PREFECT_API_URL points at it.

The terminal shows one line per step (a live bar while it runs, on an interactive terminal) and the funnel;
Prefect's flow and task run records go to the API (the UI) and to `<run>/logs/prefect.log` (`--verbose`: the
terminal too; flows/logs.py).

This module (the command line) does not import Prefect at its top: the private server's process is started first
(flows/server.py), so that its start-up (~3 s of its own CPU) runs beside this process importing Prefect (~0.8 s)
and the rest of what the run needs (`warm_imports`). `stage_flow` and its tasks live in `flows/stage_flow.py` and
are importable from here as before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from core.paths import STAGES
from core.stage_files import ConfigError
from filters.step import referenced_files  # noqa: F401 - re-exported: flows' tests and users import it here
from ingest.sources import SourcesError, check_sources_match, load_sources
from pipeline.executors import EXECUTORS
from pipeline.layout import RunLayout
from stage.config import load_stage_config
from stage.run import CountInvariantError

DEFAULT_RUNS = Path("runs")
# The flow and its tasks (flows/stage_flow.py, which imports Prefect), importable from this module as before.
_FLOW_NAMES = ("stage_flow", "unit_task", "train_task", "prefect_map_units", "io_error_only")


def __getattr__(name: str) -> Any:
    if name in _FLOW_NAMES:
        import importlib

        return getattr(importlib.import_module("flows.stage_flow"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train_line(result: dict[str, Any]) -> str:
    """The terminal's line for the trainer (its per-step lines are in the run log and `train/log.jsonl`)."""
    line = f"{'train':<24} {result['steps']:,} steps ({result['steps'] - result['start_step']:,} run)"
    if result.get("final_loss") is not None:
        line += f"  loss {result['final_loss']:.4f}"
    if result.get("tokens_per_s"):
        line += f"  {result['tokens_per_s']:,.0f} tok/s"
    return line


def run_layout(stage: str, out: str | None) -> RunLayout:
    """The run directory: `out`, or runs/<stage>."""
    return RunLayout(Path(out) if out else DEFAULT_RUNS / stage)


def format_funnel(summary: dict[str, Any], top: int = 3) -> str:
    """The funnel as a fixed-width table: docs in/out and top drop reasons per step."""
    lines = [f"\ncorpusforge stage '{summary['stage']}' -> {summary['run_dir']}"]
    lines.append(f"{'step':<22}{'in':>9}{'out':>9}  top reasons")
    for r in summary["funnel"]:
        reasons = {**r.get("quarantined", {}), **r["dropped"]}
        top_reasons = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:top])
        mods = sum(r["modified"].values())
        if mods:
            top_reasons += f"{'; ' if top_reasons else ''}modified {mods}"
        note = " (cached)" if r.get("skipped") else ""
        lines.append(f"{r['step'] + note:<22}{r['docs_in']:>9,}{r['docs_out']:>9,}  {top_reasons}")
    lines.append(
        f"records read {summary['records_read']:,} = kept {summary['docs_final']:,} + dropped "
        f"{summary['dropped']:,} + quarantined {summary['quarantined']:,}"
    )
    if summary["docs_final"] == 0:
        lines.append("WARNING: the final corpus is empty: every document was dropped or quarantined (see above)")
    if summary.get("sources_without_files"):
        lines.append(f"WARNING: no input file matched for optional source(s) {summary['sources_without_files']}")
    lines += [f"WARNING: {w}" for w in summary.get("shards", {}).get("warnings", [])]
    return "\n".join(lines)


def check_before_run(stage: str, config: str | None, sources: str | None) -> None:
    """Everything that can be checked without doing work: the stage file's every table, the sources file,
    the required evaluation sets. Raises ConfigError / SourcesError / FileNotFoundError with one line."""
    from dedup.steps import resolve_eval_sets

    cfg = load_stage_config(stage, config)
    check_sources_match(load_sources(Path(sources) if sources else cfg.sources))  # every path matches something
    if cfg.decontam.enabled:
        resolve_eval_sets(cfg.decontam.as_table(), cfg.path.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.stage",
        description=(
            "Run a corpusforge curriculum stage end to end (ingest, filter, dedup, decontaminate, tokenize and "
            "shard) as a Prefect flow whose steps are content-keyed work units. Finished units are skipped on "
            "rerun; a killed run resumes where it stopped. Outputs are byte-identical at any --workers and with "
            'either executor. Query the result with `python -m flows.query --out DIR "SQL"`.'
        ),
    )
    parser.add_argument("stage", choices=STAGES, help="curriculum stage to run")
    parser.add_argument("--sources", help="sources file (TOML); default: the one the stage config names")
    parser.add_argument("--out", help="run directory (default: runs/<stage>)")
    parser.add_argument("--limit", type=int, help="read at most N records per source (quick looks)")
    parser.add_argument("--config", help="stage config file (default: configs/stages/<stage>.toml)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (or Ray CPUs) for the work units (default: 1, in this process)",
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: a process pool on this machine; ray: Ray tasks (default: local)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster for --executor ray (default: RAY_ADDRESS, else a local Ray on 127.0.0.1 "
        "started and stopped by this command)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the token budget per source and domain for the stage's mixture; write no shards",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        metavar="N",
        help="then train the bundled MoE trainer on the stage's manifest for N steps "
        "(resumes; continues from the previous stage's checkpoint)",
    )
    parser.add_argument("--json", action="store_true", help="print the funnel as JSON at the end")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    for name in ("limit", "train_steps", "workers"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    return run_cli(
        lambda: check_before_run(args.stage, args.config, args.sources),
        lambda: run_flow(args),
        as_json=args.json,
        layout=run_layout(args.stage, args.out),
        verbose=args.verbose,
        warm_up=lambda: warm_imports(filters_in_process=args.workers == 1 and args.executor == "local"),
    )


def run_flow(args: argparse.Namespace) -> dict[str, Any]:
    """The stage flow for the parsed command line (Prefect is imported here, once the server's process started)."""
    from flows.stage_flow import stage_flow

    return stage_flow(
        stage=args.stage,
        sources=args.sources,
        out=args.out,
        limit=args.limit,
        config=args.config,
        dry_run=args.dry_run,
        train_steps=args.train_steps,
        workers=args.workers,
        executor=args.executor,
        ray_address=args.ray_address,
    )


def warm_imports(filters_in_process: bool) -> None:
    """Import (and build) what the run needs later anyway, while the private Prefect server boots (this process
    would only wait for it): the flow's module (flows/stage_flow.py, Prefect) and, when the units run in this
    process, what the filter step imports (spaCy without torch), the report's matplotlib and its tokenizers
    (`report.fertility.TOKENIZERS`, the stage's among them: built once per process). Nothing is written and every
    result is the one the run would build, so the outputs are the same: CPU that runs beside the server's own
    start-up instead of after it, wall time saved when a core is free.

    With worker processes the report's tokenizers and matplotlib (~165 MiB of RSS) are left for later: loaded
    here they would sit in this process through the filter step, when the workers hold their models and the
    run's memory peaks; after that step the workers are replaced by fresh ones (`Step.loads_models`)."""
    import importlib

    modules = ["flows.stage_flow", "report.html"]
    if filters_in_process:  # else workers import the filters, and the report's modules wait (see above)
        modules += ["filters.chain", "matplotlib.figure"]
    try:
        if filters_in_process:
            from filters.text_features import import_spacy_without_torch
            from report.fertility import TOKENIZERS
            from sharding.tokenizer import load_tokenizer

            import_spacy_without_torch()
            for name in TOKENIZERS:
                load_tokenizer(name)
        for name in modules:
            importlib.import_module(name)
    except (ImportError, OSError, ValueError):
        pass  # the step that needs it fails with its own message (a missing package, vocabulary or asset)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print Prefect's flow and task run records on the terminal (default: only in "
        "<run>/logs/prefect.log and the Prefect UI)",
    )


def run_cli(
    check: Any,
    run: Any,
    as_json: bool,
    run_errors: tuple[type[BaseException], ...] = (),
    layout: RunLayout | None = None,
    verbose: bool = False,
    warm_up: Any = None,
) -> int:
    """A flow command's tail: `check()` before Prefect starts (a wrong input is one line, exit 2), then `run()`
    against the configured or a private Prefect server; the funnel on stdout. Exit 3 when the count invariant
    breaks, 2 for config errors (and `run_errors`) met during the run.

    Args:
        layout: the run directory: Prefect's run records go to its `prefect_log` (not the terminal unless
            `verbose`) and a private server's output to its `prefect_server_log`.
        verbose: Prefect's run records on the terminal too.
        warm_up: called while a private Prefect server boots (`flows.server.temporary_prefect_server`).
    """
    try:  # check every config table and input before Prefect starts: a short error instead of a trace
        check()
    except (SourcesError, ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from flows.logs import run_records_to_file
    from flows.server import prefect_api

    records = run_records_to_file(layout.prefect_log, verbose) if layout else contextlib.nullcontext()
    try:
        # The API first: a private server's process starts before `records` (and anything else) imports Prefect.
        with prefect_api(server_log=layout.prefect_server_log if layout else None, warm_up=warm_up), records:
            summary = run()
    except CountInvariantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (SourcesError, ConfigError, RuntimeError, *run_errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_funnel(summary))
    if layout is not None:
        print(f"report {layout.report / 'index.html'}; Prefect run records {layout.prefect_log}")
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    from flows.fast_exit import exit_without_teardown

    exit_without_teardown(main())  # ~0.9 s less than sys.exit: no teardown of every module (flows/fast_exit.py)
