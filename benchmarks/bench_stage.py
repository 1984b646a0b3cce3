"""The whole `general` stage from outside, as whole processes: ours (`python -m flows.stage general`) vs datatrove.

Same documents on both sides, written once as JSONL (one folder per domain, `--parts` files each):

- ours: `python -m flows.stage general --sources S --config C --out O --workers N [--executor ray]`, where C is
  a copy of configs/stages/general.toml with only the filters datatrove also has (`--filters prose`: Gopher
  repetition, Gopher quality, C4 with `filter_no_terminal_punct = false`, FineWeb, on every domain; `--filters
  none`: no filter), no `[scorers]` (datatrove has no model scorer; `--filters prose+scorers` adds general's as
  an extra row of ours alone), exact dedup and decontamination off, MinHash at FineWeb's 14 bands x 8 rows (word 5-grams;
  ours also verifies candidates at estimated Jaccard >= 0.4), and the stage's shards on: ours also tokenizes
  (o200k_harmony), packs and writes the shards, the datatrove and Megatron exports and the manifest;
- datatrove: `LocalPipelineExecutor(tasks=N, workers=N)` running JsonlReader -> the same four filters ->
  ParquetWriter, then its four MinHash stages (signatures, buckets with tasks = 14, clusters, filter) ->
  ParquetWriter, with its default `MinhashConfig` (5-grams, 14 x 8, 64-bit hashes): this file run as
  `--child-datatrove`.

Each run is one process tree, timed from outside (start to exit, start-up included). Memory: the process tree is
polled every 50 ms (psutil); "tree" is the peak of the summed RSS of every process in it (shared pages count
once per process), "largest" the peak RSS of the largest single process (the kernel's ru_maxrss from `wait4`,
or the sampled peak of a pool worker, which the main process does not wait for, when larger), and "worker" the
largest sampled peak among the processes that run units (pool or Ray workers; the main process at one worker).
The per-step table comes from the run directory: each step's `_STEP.json` is written when the step ends, so a
step's wall time is the gap between consecutive markers (the first from the run lock, taken when
the flow starts); a reduce's time is its marker minus the step's last unit marker.

Input: the real texts of ../shared/corpora (UDHR, lingua sentences as paragraphs, clickbait headlines in lists
of 20, GSM8K and its socratic twin, MATH, MMLU-STEM, 410 source files), in a seeded order; one document in
ten is a planted near-duplicate (3% of its words replaced) of an earlier one, so MinHash has clusters to find.
Beyond one pass over the texts, documents are further copies with 30% of their words replaced by words of the
same text (5-gram Jaccard ~0.1: not near-duplicates), so every step's work grows with the input
(benchmarks/stage_input.py, with the stage config; the tables are benchmarks/stage_tables.py's).

Results are appended to benchmarks/out/stage_runs.jsonl (one JSON row per run) and the tables, built from every
row of that file, are printed and written to benchmarks/out/stage.md; run the matrix in pieces and add
`--report-only` to print the tables again. One benchmark at a time:

    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_stage.py --docs 10000 --scales 1 --workers 1,2 \
        --executors local,ray --sides ours,datatrove --filters prose --repeats 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it

from benchmarks.harness import OUT, Measured, machine, measure
from benchmarks.stage_input import BANDS, ROWS, build_input, stage_config
from benchmarks.stage_tables import tables
from core.paths import REPO_ROOT, SUCCESS_MARKER

# --- where our time goes -----------------------------------------------------------------------------------------


def step_times(run_dir: Path, m: Measured) -> list[dict[str, Any]]:
    """Wall seconds per step of one of our runs, from the markers' file times (see the module docstring)."""
    from pipeline.layout import RunLayout  # here, not at the top: the datatrove child imports this module

    layout = RunLayout(run_dir)
    names = [d.name for d in layout.steps.iterdir() if layout.step_marker(d.name).is_file()]
    markers = sorted((layout.step_marker(name).stat().st_mtime, name) for name in names)
    funnel = json.loads(layout.funnel.read_text())
    prev = layout.lock.stat().st_mtime
    rows = [{"step": "start-up: interpreter, imports, Prefect server, flow", "seconds": prev - m.started}]
    for mtime, step in markers:
        marker = json.loads(layout.step_marker(step).read_text())
        s = marker["stats"]
        row = {
            "step": step,
            "seconds": mtime - prev,
            "units": len(marker["units"]),
            "docs_in": s["docs_in"],
            "docs_out": s["docs_out"],
        }
        reduce_marker = layout.reduce(step) / SUCCESS_MARKER
        unit_ends = [u.stat().st_mtime for u in layout.units(step).glob(f"*/{SUCCESS_MARKER}")]
        if reduce_marker.is_file() and unit_ends:
            row["reduce_seconds"] = reduce_marker.stat().st_mtime - max(unit_ends)
        if len(rows) == 1:  # the run lock is taken before the executor starts
            row["note"] = "includes starting the executor (process pool or Ray)"
        if step == "shard_plan":  # the tokenize step's folder is removed after success (keep_token_cache = false)
            tok = funnel.get("shards", {}).get("tokenize", {})
            row["step"] = "publish corpus, tokenize, shard_plan"
            row["note"] = f"tokenize {tok.get('seconds', 0):.2f} s, {tok.get('chunks', 0)} chunks"
        rows.append(row)
        prev = mtime
    end = layout.funnel.stat().st_mtime
    rows.append({"step": "publish shards, exports, manifest, funnel", "seconds": end - prev})
    rows.append({"step": "exit: flush logs, stop workers, Ray and the Prefect server", "seconds": m.ended - end})
    return rows


def shards_seconds(steps: list[dict[str, Any]]) -> float:
    """Our tokenize + pack + shards + exports time: every segment after the `final` step up to the funnel."""
    names = [r["step"] for r in steps]
    if "final" not in names:
        return 0.0
    i = names.index("final")
    return sum(r["seconds"] for r in steps[i + 1 : -1])


# --- the two sides -------------------------------------------------------------------------------------------------


def run_ours(
    info: dict[str, Any], work: Path, filters: str, workers: int, executor: str, timeout: float
) -> dict[str, Any]:
    inp = Path(info["dir"])
    cfg = stage_config(work / f"general-{filters}.toml", inp / "sources.toml", filters)
    out = work / f"run-ours-{executor}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "flows.stage",
        "general",
        "--sources",
        str(inp / "sources.toml"),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--executor",
        executor,
    ]
    m = measure(cmd, REPO_ROOT, work / f"ours-{executor}-{workers}.log", timeout)
    row: dict[str, Any] = {"measured": asdict(m)}
    if m.rc != 0:
        row["error"] = (work / f"ours-{executor}-{workers}.log").read_text()[-2000:]
        return row
    from pipeline.layout import RunLayout

    funnel = json.loads(RunLayout(out).funnel.read_text())
    row["docs_out"] = funnel["docs_final"]
    row["filtered_out"] = next((r["docs_out"] for r in funnel["funnel"] if r["step"] == "filter"), None)
    row["steps"] = step_times(out, m)
    row["shards_seconds"] = shards_seconds(row["steps"])
    row["tokens"] = funnel.get("shards", {}).get("total_tokens")
    shutil.rmtree(out, ignore_errors=True)
    return row


def run_datatrove_side(info: dict[str, Any], work: Path, filters: str, workers: int, timeout: float) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out = work / f"run-datatrove-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-datatrove",
        info["dir"],
        str(out),
        str(workers),
        filters,
    ]
    m = measure(cmd, REPO_ROOT, work / f"datatrove-{workers}.log", timeout)
    row: dict[str, Any] = {"measured": asdict(m)}
    if m.rc != 0:
        row["error"] = (work / f"datatrove-{workers}.log").read_text()[-2000:]
        return row

    def rows_in(d: Path) -> int | None:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in d.glob("*.parquet")) if d.is_dir() else None

    row["docs_out"] = rows_in(out / "final")
    row["filtered_out"] = rows_in(out / "filtered")
    row["stages"] = json.loads((out / "stages.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return row


def datatrove_child(inp: Path, out: Path, workers: int, filters: str) -> None:
    """The datatrove side, in this process (see the module docstring); stage seconds to out/stages.json."""
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()  # its per-step stats logging would be most of the output
    logging.disable(logging.WARNING)
    cfg = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes, 64-bit xxhash: FineWeb's reference
    assert (cfg.n_grams, cfg.num_buckets, cfg.hashes_per_bucket) == (5, BANDS, ROWS), cfg
    n = workers
    common: dict[str, Any] = {"logging_dir": None, "skip_completed": False}
    stages: dict[str, float] = {}

    def run(name: str, pipeline: list, tasks: int) -> None:
        t0 = time.perf_counter()
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(n, tasks), **common).run()
        stages[name] = time.perf_counter() - t0

    def jsonl_input() -> JsonlReader:
        return JsonlReader(str(inp), glob_pattern="*/*.jsonl", text_key="text", id_key="id")

    source = jsonl_input
    if filters == "prose":
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        run(
            "read, filter, write",
            [
                jsonl_input(),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(filter_no_terminal_punct=False),
                FineWebQualityFilter(),
                ParquetWriter(str(out / "filtered")),
            ],
            n,
        )

        def source() -> ParquetReader:  # type: ignore[misc]
            return ParquetReader(str(out / "filtered"))

    run("minhash 1: signatures", [source(), MinhashDedupSignature(str(out / "sigs"), config=cfg)], n)
    run(
        "minhash 2: buckets",
        [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=cfg)],
        cfg.num_buckets,
    )
    run("minhash 3: clusters", [MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=cfg)], 1)
    run(
        "minhash 4: filter, write",
        [source(), MinhashDedupFilter(str(out / "remove")), ParquetWriter(str(out / "final"))],
        n,
    )
    (out / "stages.json").write_text(json.dumps(stages))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10000, help="documents at scale 1")
    ap.add_argument("--scales", default="1", help="comma-separated multiples of --docs (e.g. 1,2,4)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--executors", default="local", help="ours: local and/or ray")
    ap.add_argument("--sides", default="ours,datatrove")
    ap.add_argument(
        "--filters",
        default="prose",
        help="prose and/or none (no scorers: datatrove has none), or prose+scorers: ours only, general's scorers on",
    )
    ap.add_argument("--repeats", type=int, default=2, help="runs of each configuration (sides alternate)")
    ap.add_argument("--parts", type=int, default=4, help="JSONL files per domain (ingest units)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run before it is killed")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cf-bench-stage"))
    ap.add_argument("--results", type=Path, default=OUT / "stage_runs.jsonl", help="raw rows (appended)")
    ap.add_argument("--write", type=Path, default=OUT / "stage.md", help="table file (BENCHMARKS.md is curated)")
    ap.add_argument("--report-only", action="store_true", help="print the tables of the rows already measured")
    return ap.parse_args()


def run_one(args: argparse.Namespace, info: dict[str, Any], filters: str, workers: int, rep: int, side: str) -> None:
    """Every executor of one side at one configuration: a row each, appended to `args.results` and printed."""
    if side == "datatrove" and "+" in filters:
        return  # datatrove has no model scorers: that row is ours alone
    for executor in args.executors.split(",") if side == "ours" else ["-"]:
        if side == "ours":
            row = run_ours(info, args.workdir, filters, workers, executor, args.timeout)
        else:
            row = run_datatrove_side(info, args.workdir, filters, workers, args.timeout)
        row.update(
            side=side,
            executor=executor,
            filters=filters,
            docs=info["docs"],
            mb=info["bytes"] / 1e6,
            workers=workers,
            repeat=rep,
            date=datetime.date.today().isoformat(),
            machine=machine(),
        )
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")
        m = row["measured"]
        print(
            f"{side:9s} {executor:5s} filters={filters} docs={info['docs']} "
            f"workers={workers} rep={rep}: {m['seconds']:.1f} s, tree {m['tree_mib']:.0f} "
            f"MiB, largest {m['largest_mib']:.0f} MiB, docs out {row.get('docs_out')}"
            + (" FAILED" if "error" in row else ""),
            flush=True,
        )


def main() -> None:
    args = parse_args()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        for filters in args.filters.split(","):
            for scale in [int(s) for s in args.scales.split(",")]:
                info = build_input(args.workdir, args.docs * scale, args.parts)
                for workers in [int(w) for w in args.workers.split(",")]:
                    for rep in range(args.repeats):
                        for side in args.sides.split(","):
                            run_one(args, info, filters, workers, rep, side)
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    table = tables(rows)
    print(table)
    args.write.write_text(
        f"## Whole stage: `python -m flows.stage general` vs datatrove\n\n"
        f"{datetime.date.today().isoformat()}, {machine()}.\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-datatrove":
        datatrove_child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
