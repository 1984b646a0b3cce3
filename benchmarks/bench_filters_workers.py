"""The filter chain as whole processes at the worker count users run (issue 8): our filter step through
`make_executor("local", N)` vs datatrove's ParquetReader -> the same five filters -> ParquetWriter, both reading
the same ingested Parquet documents (benchmarks/bench_filters.py's set), timed and measured from outside
(benchmarks/harness.py's `measure`). `--with-cascade` also times our chain with the LID cascade instead of lid.176.

Usage: flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_filters.py --workers 1,2 --n 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it

from benchmarks.bench_filters import build_docs, datatrove_lid_filter
from benchmarks.harness import Measured, ingest, machine, measure, write_input
from core.paths import REPO_ROOT

_ALL_DOMAINS = ["web", "stem", "code"]
# The same five filters as `run_ours`, as a stage's [filters] table, on every domain as datatrove runs them.
# lid.176 is datatrove's model: the same work. The LID cascade (issue 11) is the extra table of `--with-cascade`:
# other decisions, so it is compared with our lid.176 chain (before / after), not with datatrove's kept set.
STAGE_FILTERS = {
    "langid": {"model": "lid176", "min_score": 0.65, "domains": _ALL_DOMAINS},
    "gopher_repetition": {"language": "en", "domains": _ALL_DOMAINS},
    "gopher_quality": {"language": "en", "domains": _ALL_DOMAINS},
    "c4": {"filter_no_terminal_punct": False, "language": "en", "domains": _ALL_DOMAINS},
    "fineweb": {"language": "en", "domains": _ALL_DOMAINS},
}

# `--with-cascade` variants: tool name -> the langid table's changes.
CASCADE_VARIANTS = {
    "cascade": {"model": "cascade"},  # the stage default: lingua in low accuracy mode
    "cascade-high200": {"model": "cascade", "lingua_high_accuracy_below": 200},  # high accuracy on short prose
}


def workers_child_ours(prep: Path, inp: Path, out: Path, workers: int, lid: dict | None = None) -> None:
    """Our filter step over the ingested Parquet units, through `make_executor("local", workers)`.

    Args:
        lid: changes to the langid table (None: lid.176 as datatrove; see CASCADE_VARIANTS).
    """
    from filters.chain import FILTERS
    from filters.step import FilterStep
    from pipeline.executors import make_executor
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step

    config = {name: STAGE_FILTERS.get(name, {"enabled": False}) for name in FILTERS}
    config["langid"] = {**config["langid"], **(lid or {})}
    docs = ingest(inp, prep)  # every unit's marker matches: a listing
    with make_executor("local", workers) as ex:
        run_step(FilterStep(config, docs), RunLayout(out), ex)


def workers_child_datatrove(prep: Path, out: Path, workers: int) -> None:
    """datatrove: ParquetReader -> the same five filters -> ParquetWriter, LocalPipelineExecutor(tasks=workers)."""
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)
    steps = [
        ParquetReader(str(prep / "steps" / "ingest" / "units"), glob_pattern="*/docs/*.parquet"),
        datatrove_lid_filter(),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        ParquetWriter(str(out / "kept")),
    ]
    LocalPipelineExecutor(steps, tasks=workers, workers=workers, logging_dir=None, skip_completed=False).run()


def _kept(tool: str, out: Path) -> set[str]:
    import pyarrow.parquet as pq

    units = out / "steps" / "filter" / "units"
    files = units.glob("*/docs/*.parquet") if tool != "datatrove" else (out / "kept").glob("*.parquet")
    return {i for p in sorted(files) for i in pq.read_table(p, columns=["id"])["id"].to_pylist()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="filter chain vs datatrove as whole processes at N workers")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", type=int, default=8, help="JSONL input files = ingest units")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cf-bench-filters-workers"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/filters_workers.md"))
    ap.add_argument(
        "--with-cascade",
        action="store_true",
        help="also time our chain with the default LID cascade instead of lid.176 (before/after issue 11)",
    )
    return ap.parse_args(argv)


def time_tools(
    args: argparse.Namespace, workers: int, prep: Path, inp: Path
) -> tuple[dict[str, list[Measured]], dict[str, set[str]]]:
    """Every tool `args.repeats` times at `workers` (tools alternate, so a drift in machine speed hits all)."""
    work = args.workdir
    runs: dict[str, list] = {"ours": [], "datatrove": []} | {v: [] for v in CASCADE_VARIANTS if args.with_cascade}
    kept: dict[str, set[str]] = {}
    for _ in range(args.repeats):
        for tool in runs:
            out = work / f"out-{tool}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--workers-child",
                tool,
                str(prep),
                str(inp),
                str(out),
                str(workers),
            ]
            m = measure(cmd, REPO_ROOT, work / f"{tool}-{workers}.log", 900)
            if m.rc != 0:
                log = (work / f"{tool}-{workers}.log").read_text()
                raise RuntimeError(f"{tool} (workers={workers}) failed with exit code {m.rc}:\n{log[-2000:]}")
            runs[tool].append(m)
            kept[tool] = _kept(tool, out)
    return runs, kept


def workers_table(args: argparse.Namespace, mib: float, rows: list[tuple]) -> list[str]:
    lines = [
        f"Filters as whole processes ({datetime.date.today().isoformat()}; {machine()}): {args.n} documents "
        f"({mib:.1f} MiB), {args.parts} Parquet inputs, median of {args.repeats}; ours writes kept docs and lineage, "
        "datatrove the kept docs.",
        "",
        "| workers | ours s | datatrove s | speed-up | ours tree MiB | datatrove tree MiB | ours largest MiB "
        "| datatrove largest MiB | kept ours / datatrove | kept differ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w, med, tree, largest, kept_n, differ in rows:
        lines.append(
            f"| {w} | {med['ours']:.1f} | {med['datatrove']:.1f} | {med['datatrove'] / med['ours']:.2f}x "
            f"| {tree['ours']:,.0f} | {tree['datatrove']:,.0f} | {largest['ours']:,.0f} "
            f"| {largest['datatrove']:,.0f} | {kept_n['ours']:,} / {kept_n['datatrove']:,} | {differ} |"
        )
    return lines


def cascade_table(cascade_rows: list[tuple]) -> list[str]:
    lines = [
        "",
        "Our chain with lid.176 (before issue 11) vs the LID cascade (after; `cascade-high200`: "
        "lingua_high_accuracy_below = 200), same input and steps:",
        "",
        "| workers | variant | lid.176 s | variant s | variant / lid.176 time | lid.176 tree MiB "
        "| variant tree MiB | kept lid.176 / variant | kept differ |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w, v, t_lid, t_cas, m_lid, m_cas, k_lid, k_cas, differ in cascade_rows:
        lines.append(
            f"| {w} | {v} | {t_lid:.1f} | {t_cas:.1f} | {t_cas / t_lid:.2f}x | {m_lid:,.0f} "
            f"| {m_cas:,.0f} | {k_lid:,} / {k_cas:,} | {differ} |"
        )
    return lines


def workers_main(argv: list[str]) -> None:
    """Both filter chains as whole processes at 1 and 2 workers, reading the same Parquet documents."""
    args = parse_args(argv)
    docs = [{"id": str(d.id), "text": d.text} for d in build_docs()[: args.n]]
    inp = write_input(args.workdir, docs, args.parts)
    prep = args.workdir / "prep"
    shutil.rmtree(prep, ignore_errors=True)
    ingest(inp, prep)
    mib = sum(p.stat().st_size for p in inp.glob("*.jsonl")) / 2**20
    rows, cascade_rows = [], []
    for workers in [int(w) for w in args.workers.split(",")]:
        runs, kept = time_tools(args, workers, prep, inp)
        med = {t: statistics.median(m.seconds for m in ms) for t, ms in runs.items()}
        tree = {t: statistics.median(m.tree_mib for m in ms) for t, ms in runs.items()}
        largest = {t: statistics.median(m.largest_mib for m in ms) for t, ms in runs.items()}
        differ = len(kept["ours"] ^ kept["datatrove"])
        rows.append((workers, med, tree, largest, {t: len(k) for t, k in kept.items()}, differ))
        for v in CASCADE_VARIANTS if args.with_cascade else ():
            n_ours, n_v, differ_v = len(kept["ours"]), len(kept[v]), len(kept["ours"] ^ kept[v])
            cascade_rows.append((workers, v, med["ours"], med[v], tree["ours"], tree[v], n_ours, n_v, differ_v))
    lines = workers_table(args, mib, rows) + (cascade_table(cascade_rows) if cascade_rows else [])
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Filters at N workers: corpusforge vs datatrove\n\n{table}\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--workers-child":
        tool, (prep, inp, out), n = sys.argv[2], map(Path, sys.argv[3:6]), int(sys.argv[6])
        if tool == "ours" or tool in CASCADE_VARIANTS:
            workers_child_ours(prep, inp, out, n, CASCADE_VARIANTS.get(tool))
        else:
            workers_child_datatrove(prep, out, n)
    else:
        workers_main(sys.argv[1:])
