"""MinHash dedup end to end, as whole processes: our unit steps vs datatrove's four MinHash stages, same documents.

Both sides do the same work, timed alike from outside (process start to exit, interpreter start-up included), with
the same worker count, at `--docs` and twice that:

- input: the same Parquet documents (the ingest step's units, written once before any timing from `--parts`
  JSONL files; DOCUMENT_SCHEMA), read by both sides;
- ours: `MinHashSignaturesStep` -> `MinHashEdgesStep` (+ its reduce: one union-find, clusters.parquet) ->
  `DedupApplyStep`, each through `pipeline.runner.run_step` with `pipeline.executors.make_executor("local", N)`;
  writes the deduplicated documents (Parquet) and the lineage (a `kept` / `dropped` row with cluster id and size
  for every clustered document);
- datatrove: ParquetReader -> MinhashDedupSignature (tasks = N), MinhashDedupBuckets (tasks = bands),
  MinhashDedupCluster (tasks = 1), ParquetReader -> MinhashDedupFilter -> ParquetWriter (tasks = N), each with
  `LocalPipelineExecutor(workers = N)`; writes the deduplicated documents;
- an extra row, labelled: our older in-process `MinHashDedup.find_duplicates` over the JSONL, which computes
  cluster decisions only (no Parquet read, no documents written).

Same parameters on both sides: word 5-grams, `--bands` x `--rows` (default 28 x 4); ours also verifies candidate
pairs at estimated Jaccard >= 0.4 and uses 32-bit hashes, datatrove 64-bit ones. Memory: the process tree is
polled every 50 ms (benchmarks/harness.py's `measure`): "tree" is the peak of the summed RSS of every process, "largest" the
peak RSS of the largest single process. Documents: every text of ../shared/corpora plus seeded near-duplicate
variants (3% of words replaced, deleted or duplicated) until there are `--docs` documents. Quality is per
document: a planted variant should be dropped, every other document kept (natural near-duplicates inside the
corpora count as false drops for both tools alike).

Usage (one benchmark at a time):
    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_dedup.py --docs 20000 --workers 1,2 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it

from benchmarks.harness import OUT, corpora_jsonl, ingest, machine, measure, write_input
from core.paths import REPO_ROOT

NGRAM = 5


def build_docs(n: int, seed: int = 0) -> list[dict]:
    """Real texts plus planted variants; each doc has id, text and group (its base doc's id)."""
    texts: list[str] = []
    texts += [r["text"] for r in corpora_jsonl("multilingual_udhr/udhr_article1.jsonl")]
    texts += [r["text"] for r in corpora_jsonl("multilingual_udhr/udhr_full_selected.jsonl")]
    texts += [r["content"] for r in corpora_jsonl("code_permissive/code_files.jsonl")]
    texts += [r["text"] for r in corpora_jsonl("multilingual_lingua_testdata/lingua_testdata_sample.jsonl")]
    texts += [r["question"] + "\n" + r["answer"] for r in corpora_jsonl("stem_math/gsm8k_test.jsonl")]
    for f in ("math500_test.jsonl", "math_test_sample_not_in_math500.jsonl"):
        texts += [r["problem"] + "\n" + r["solution"] for r in corpora_jsonl(f"stem_math/{f}")]
    mmlu = corpora_jsonl("stem_math/mmlu_stem_test.jsonl")
    texts += [r["question"] + " " + " ".join(r["choices"]) for r in mmlu]
    texts = list(dict.fromkeys(t for t in texts if t.strip()))  # drop exact repeats: they are not planted
    docs = [{"id": f"b{i}", "text": t, "group": f"b{i}"} for i, t in enumerate(texts)]
    rng = random.Random(seed)
    long_enough = [d for d in docs if len(d["text"].split()) >= 40]
    vocab = [w for d in rng.sample(docs, min(500, len(docs))) for w in d["text"].split()]
    i = 0
    while len(docs) < n:
        base = rng.choice(long_enough)
        words = base["text"].split()
        for _ in range(max(1, round(0.03 * len(words)))):
            j = rng.randrange(len(words))
            op = rng.random()
            if op < 0.5:
                words[j] = rng.choice(vocab)
            elif op < 0.75 and len(words) > 1:
                del words[j]
            else:
                words.insert(j, words[j])
        docs.append({"id": f"v{i}", "text": " ".join(words), "group": base["group"]})
        i += 1
    return docs[:n]


def child_ours(inp: Path, prep: Path, out: Path, workers: int, bands: int, rows: int) -> None:
    from dedup.steps import DedupApplyStep, MinHashEdgesStep, MinHashSignaturesStep
    from pipeline.executors import make_executor
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step

    # Digit runs as "0", as datatrove's MinhashConfig does by default: the same shingles on both sides (the stage
    # default keeps numbers since issue 11; this benchmark compares the work, not the defaults).
    params = {"ngram": NGRAM, "num_bands": bands, "rows_per_band": rows, "min_jaccard": 0.4, "normalize_numbers": True}
    docs = ingest(inp, prep)  # every unit's marker matches: a listing
    layout = RunLayout(out)
    with make_executor("local", workers) as ex:
        sigs = run_step(MinHashSignaturesStep(params, docs), layout, ex)
        edges = run_step(MinHashEdgesStep(params, sigs), layout, ex)
        run_step(DedupApplyStep("dedup_minhash", "minhash_dedup", docs, edges, sigs), layout, ex)


def child_datatrove(prep: Path, out: Path, workers: int, bands: int, rows: int) -> None:
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)
    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=bands, hashes_per_bucket=rows)
    common: dict[str, Any] = {"logging_dir": None, "skip_completed": False}

    def reader() -> ParquetReader:
        return ParquetReader(str(prep / "steps" / "ingest" / "units"), glob_pattern="*/docs/*.parquet")

    def run(pipeline: list, tasks: int) -> None:
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), **common).run()

    run([reader(), MinhashDedupSignature(str(out / "sigs"), config=cfg)], workers)
    run([MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=cfg)], bands)
    run([MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=cfg)], 1)
    run([reader(), MinhashDedupFilter(str(out / "remove")), ParquetWriter(str(out / "final"))], workers)


def child_inprocess(inp: Path, out: Path, bands: int, rows: int) -> None:
    from dedup.minhash import MinHashDedup

    md = MinHashDedup(ngram=NGRAM, num_bands=bands, rows_per_band=rows, workdir=out, max_memory_mb=256)

    def stream():
        for p in sorted(inp.glob("part-*.jsonl")):
            with open(p, encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    yield r["id"], r["text"]

    res = md.find_duplicates(stream())
    (out / "dropped.json").write_text(json.dumps([k for k in res if not res[k].keep]))


# --- what each side kept -------------------------------------------------------------------------------------------


def _parquet_column(files: list[Path], column: str) -> list[Any]:
    import pyarrow.parquet as pq

    return [v for p in sorted(files) for v in pq.read_table(p, columns=[column])[column].to_pylist()]


def kept_ids(tool: str, prep: Path, out: Path, all_ids: list[str]) -> set[str]:
    """The original (JSONL) ids of the documents a tool kept."""
    if tool == "in-process":
        return set(all_ids) - set(json.loads((out / "dropped.json").read_text()))
    units = prep / "steps" / "ingest" / "units"
    ingest_files = list(units.glob("*/docs/*.parquet"))
    original = dict(
        zip(
            _parquet_column(ingest_files, "id"),
            (json.loads(m)["id"] for m in _parquet_column(ingest_files, "metadata")),
        )
    )
    if tool == "ours":
        files = list((out / "steps" / "dedup_minhash" / "units").glob("*/docs/*.parquet"))
    else:
        files = list((out / "final").glob("*.parquet"))
    return {original[i] for i in _parquet_column(files, "id")}


def scores(docs: list[dict], kept: set[str]) -> tuple[int, float, float]:
    """(kept, precision, recall) of the drops against the planted variants."""
    variant = {d["id"] for d in docs if d["group"] != d["id"]}
    dropped = {d["id"] for d in docs} - kept
    hit = len(dropped & variant)
    return len(kept), hit / len(dropped) if dropped else 1.0, hit / len(variant) if variant else 1.0


def run_tool(
    tool: str, inp: Path, prep: Path, work: Path, workers: int, bands: int, rows: int, timeout: float
) -> tuple[Any, Path]:
    out = work / f"out-{tool}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        str(inp),
        str(prep),
        str(out),
        str(workers),
        str(bands),
        str(rows),
    ]
    log = work / f"{tool}-{workers}.log"
    m = measure(cmd, REPO_ROOT, log, timeout)
    if m.rc != 0:
        raise RuntimeError(f"{tool} (workers={workers}) failed with exit code {m.rc}:\n{log.read_text()[-3000:]}")
    return m, out


LABELS = {
    "ours": "ours: unit steps",
    "datatrove": "datatrove",
    "in-process": "ours, in-process find_duplicates (decisions only, no docs written)",
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000, help="documents at 1x; 2x is measured too")
    ap.add_argument("--scales", default="1,2", help="multiples of --docs")
    ap.add_argument("--workers", default="2", help="comma-separated worker counts (the same for both sides)")
    ap.add_argument("--repeats", type=int, default=3, help="median of this many runs per tool (tools alternate)")
    ap.add_argument("--tools", default="ours,datatrove,in-process")
    ap.add_argument("--bands", type=int, default=28)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--parts", type=int, default=8, help="JSONL input files = ingest units")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cf-bench-dedup"))
    ap.add_argument(
        "--write",
        type=Path,
        default=OUT / "dedup.md",
        help="table file (BENCHMARKS.md is curated by hand)",
    )
    return ap.parse_args()


def measure_scale(args: argparse.Namespace, n: int) -> list[tuple]:
    """Every tool at every worker count on `n` documents: one result row per (tool, workers), medians."""
    tools = args.tools.split(",")
    results = []  # (tool, workers, docs, mib, seconds, docs/s, tree, largest, kept, precision, recall)
    docs = build_docs(n)
    work = args.workdir / f"n{n}"
    inp = write_input(work, docs, args.parts)
    prep = work / "prep"
    shutil.rmtree(prep, ignore_errors=True)
    ingest(inp, prep)
    mib = sum(p.stat().st_size for p in inp.glob("*.jsonl")) / 2**20
    all_ids = [d["id"] for d in docs]
    worker_counts = [int(w) for w in args.workers.split(",")]
    for workers in worker_counts:
        # the in-process row is one process whatever --workers says: run it once per size
        runs: dict[str, list] = {t: [] for t in tools if t != "in-process" or workers == worker_counts[0]}
        for _ in range(args.repeats):
            for tool in runs:
                runs[tool].append(run_tool(tool, inp, prep, work, workers, args.bands, args.rows, args.timeout))
        for tool, ms in runs.items():
            secs = statistics.median(m.seconds for m, _ in ms)
            tree = statistics.median(m.tree_mib for m, _ in ms)
            largest = statistics.median(m.largest_mib for m, _ in ms)
            kept, prec, rec = scores(docs, kept_ids(tool, prep, ms[-1][1], all_ids))
            w = 1 if tool == "in-process" else workers
            results.append((tool, w, n, mib, secs, n / secs, tree, largest, kept, prec, rec))
            print(
                f"{tool:10s} workers={workers} n={n}: {secs:.1f} s, tree {tree:.0f} MiB, largest {largest:.0f} "
                f"MiB, kept {kept}, precision {prec:.4f}, recall {rec:.4f}",
                flush=True,
            )
    return results


def results_table(results: list[tuple]) -> str:
    """The markdown table (datatrove's time over each tool's) and the time growth from each size to twice it."""
    by = {(r[0], r[1], r[2]): r for r in results}
    lines = [
        "| tool | workers | docs | MiB text | s | docs/s | datatrove s / ours s | tree peak MiB "
        "| largest process MiB | kept | drop precision | drop recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, w, n, mib, s, dps, tree, largest, kept, p, r in sorted(results, key=lambda x: (x[1], x[2], x[0] != "ours")):
        dt = by.get(("datatrove", w, n))
        ratio = f"{dt[4] / s:.2f}x" if dt and t != "datatrove" else ""
        lines.append(
            f"| {LABELS[t]} | {w} | {n:,} | {mib:.0f} | {s:.1f} | {dps:,.0f} | {ratio} | {tree:,.0f} "
            f"| {largest:,.0f} | {kept:,} | {p:.4f} | {r:.4f} |"
        )
    notes = []
    for t, w, n, *_ in results:
        big = by.get((t, w, 2 * n))
        if big:
            small = by[(t, w, n)]
            notes.append(
                f"{LABELS[t]}, {w} worker(s): {n:,} -> {2 * n:,} docs takes x{big[4] / small[4]:.2f} time, "
                f"x{big[6] / small[6]:.2f} tree peak RSS"
            )
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {x}" for x in notes) if notes else "")


def main() -> None:
    args = parse_args()
    results = [row for scale in args.scales.split(",") for row in measure_scale(args, args.docs * int(scale))]
    table = results_table(results)
    print(table)
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.write_text(
        f"## Dedup: MinHash-LSH end to end, ours vs datatrove\n\n{datetime.date.today().isoformat()}, {machine()}. "
        f"Word {NGRAM}-grams, {args.bands} bands x {args.rows} rows on both sides; median of {args.repeats} "
        f"whole-process run(s) per tool (see the script's docstring for what each side reads and writes).\n\n"
        f"{table}\n\nCommand: `flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_dedup.py --docs {args.docs} "
        f"--scales {args.scales} --workers {args.workers} --repeats {args.repeats}`\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, inp, prep, out = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
        workers, bands, rows = (int(x) for x in sys.argv[6:9])
        if tool == "ours":
            child_ours(inp, prep, out, workers, bands, rows)
        elif tool == "datatrove":
            child_datatrove(prep, out, workers, bands, rows)
        else:
            child_inprocess(inp, out, bands, rows)
    else:
        main()
