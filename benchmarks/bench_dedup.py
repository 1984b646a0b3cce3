"""MinHash dedup side by side: corpusforge `MinHashDedup` vs datatrove's four MinHash stages, same documents.

Documents: every text of ../shared/corpora (UDHR, code, lingua sentences, GSM8K, MATH, MMLU-STEM) plus seeded
near-duplicate variants (3% of words replaced, deleted or duplicated) until there are `--docs` documents. Each run
happens in its own subprocess; peak RSS is that child's ru_maxrss (os.wait4). F1 is pairwise over clusters
against the planted groups (a base document and its variants); natural near-duplicates among the corpora count
as false positives for both tools alike.

Usage:
    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_dedup.py --docs 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / ".." / "shared" / "corpora"
NGRAM, BANDS, ROWS = 5, 28, 4


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_docs(n: int, seed: int = 0) -> list[dict]:
    """Real texts plus planted variants; each doc has id, text and group (its base doc's id)."""
    if not CORPORA.is_dir():
        raise FileNotFoundError(f"corpora not found at {CORPORA}: the benchmark needs ../shared/corpora")
    texts: list[str] = []
    texts += [r["text"] for r in _jsonl(CORPORA / "multilingual_udhr" / "udhr_article1.jsonl")]
    texts += [r["text"] for r in _jsonl(CORPORA / "multilingual_udhr" / "udhr_full_selected.jsonl")]
    texts += [r["content"] for r in _jsonl(CORPORA / "code_permissive" / "code_files.jsonl")]
    texts += [r["text"] for r in _jsonl(CORPORA / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl")]
    texts += [r["question"] + "\n" + r["answer"] for r in _jsonl(CORPORA / "stem_math" / "gsm8k_test.jsonl")]
    for f in ("math500_test.jsonl", "math_test_sample_not_in_math500.jsonl"):
        texts += [r["problem"] + "\n" + r["solution"] for r in _jsonl(CORPORA / "stem_math" / f)]
    mmlu = _jsonl(CORPORA / "stem_math" / "mmlu_stem_test.jsonl")
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


def run_ours(inp: Path, out: Path, tmp: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from dedup.minhash import MinHashDedup

    md = MinHashDedup(ngram=NGRAM, num_bands=BANDS, rows_per_band=ROWS, workdir=tmp, max_memory_mb=256)

    def stream():
        with open(inp, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                yield r["id"], r["text"]

    res = md.find_duplicates(stream())
    out.write_text(json.dumps({k: res[k].cluster_id for k in res}), encoding="utf-8")


def run_datatrove(inp: Path, out: Path, tmp: Path) -> None:
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)
    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS, hash_config=HashConfig(precision=64))

    def reader() -> JsonlReader:
        return JsonlReader(str(inp.parent), glob_pattern=inp.name, text_key="text", id_key="id")

    kept: dict[str, int] = {}

    def collect(data, rank: int = 0, world_size: int = 1):
        for doc in data:
            kept[doc.id] = doc.metadata.get("minhash_cluster_id", -1)
            yield doc

    logs = str(tmp / "logs")
    common = {"logging_dir": None, "skip_completed": False}
    LocalPipelineExecutor([reader(), MinhashDedupSignature(str(tmp / "sigs"), config=cfg)], tasks=1, **common).run()
    LocalPipelineExecutor(
        [MinhashDedupBuckets(str(tmp / "sigs"), str(tmp / "buckets"), config=cfg)], tasks=BANDS, workers=1, **common
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupCluster(str(tmp / "buckets"), str(tmp / "remove"), config=cfg, save_cluster_id=True)],
        tasks=1,
        **common,
    ).run()
    removed_dir = tmp / "removed"
    LocalPipelineExecutor(
        [
            reader(),
            MinhashDedupFilter(
                str(tmp / "remove"),
                exclusion_writer=JsonlWriter(str(removed_dir), compression=None),
                load_cluster_ids=True,
            ),
            collect,
        ],
        tasks=1,
        **common,
    ).run()
    del logs
    clusters = {k: f"c{v}" for k, v in kept.items() if v != -1}
    for f in sorted(removed_dir.glob("*.jsonl")):
        for r in _jsonl(f):
            clusters[r["id"]] = f"c{r['metadata']['minhash_cluster_id']}"
    out.write_text(json.dumps(clusters), encoding="utf-8")


def pair_scores(docs: list[dict], clusters: dict[str, str]) -> tuple[float, float, float]:
    def pairs(counter: Counter) -> int:
        return sum(c * (c - 1) // 2 for c in counter.values())

    pred = [clusters.get(d["id"], d["id"]) for d in docs]
    truth = [d["group"] for d in docs]
    tp = pairs(Counter(zip(pred, truth)))
    p_all, t_all = pairs(Counter(pred)), pairs(Counter(truth))
    prec = tp / p_all if p_all else 0.0
    rec = tp / t_all if t_all else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def timed_child(tool: str, inp: Path, out: Path) -> tuple[float, float]:
    """Run one tool in a subprocess; (seconds, peak RSS MiB of that child)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--child", tool, str(inp), str(out), tmp]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} child failed with exit code {proc.returncode}")
    return dt, usage.ru_maxrss / 1024


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=1, help="median of this many runs per tool")
    ap.add_argument("--tools", default="ours,datatrove")
    ap.add_argument("--write", type=Path, default=ROOT / "benchmarks" / "out" / "dedup.md",
                    help="table file (BENCHMARKS.md is curated by hand)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        for n in (args.docs, 2 * args.docs):
            docs = build_docs(n)
            inp = Path(tmp) / f"docs_{n}.jsonl"
            with open(inp, "w", encoding="utf-8") as f:
                for d in docs:
                    f.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
            mb = inp.stat().st_size / 2**20
            for tool in args.tools.split(","):
                if n != args.docs and tool != "ours":
                    continue  # the 2N scaling row is for ours only (datatrove's time is in the N row)
                runs = []
                for _ in range(args.repeats):
                    out = Path(tmp) / f"out_{tool}_{n}.json"
                    runs.append(timed_child(tool, inp, out))
                secs = statistics.median(r[0] for r in runs)
                rss = statistics.median(r[1] for r in runs)
                prec, rec, f1 = pair_scores(docs, json.loads(out.read_text(encoding="utf-8")))
                rows.append((tool, n, mb, secs, n / secs, rss, prec, rec, f1))
                print(f"{tool:10s} n={n} {secs:.1f}s {n / secs:.0f} docs/s rss {rss:.0f} MiB F1 {f1:.4f}", flush=True)
    header = (
        "| tool | docs | MiB text | seconds | docs/s | peak RSS MiB | pair precision | pair recall | pair F1 |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {t} | {n} | {mb:.0f} | {s:.1f} | {d:,.0f} | {r:.0f} | {p:.4f} | {rc:.4f} | {f:.4f} |"
        for t, n, mb, s, d, r, p, rc, f in rows
    ]
    table = "\n".join(lines)
    print(table)
    by = {(r[0], r[1]): r for r in rows}
    ratio = ""
    if ("ours", args.docs) in by and ("datatrove", args.docs) in by:
        o, d = by[("ours", args.docs)], by[("datatrove", args.docs)]
        ratio = f"\nAt {args.docs} docs: ours is {d[3] / o[3]:.1f}x faster than datatrove, "
        ratio += f"at {o[5] / d[5]:.2f}x its peak RSS.\n"
        print(ratio)
    if ("ours", 2 * args.docs) in by:
        s1, s2 = by[("ours", args.docs)][3], by[("ours", 2 * args.docs)][3]
        ratio += f"Scaling (ours): 2N takes {s2 / s1:.2f}x the time of N.\n"
    machine = f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}"
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.write_text(
        f"## Dedup: MinHash-LSH, ours vs datatrove\n\n"
        f"{datetime.date.today().isoformat()}, {machine}. Same parameters for both: word {NGRAM}-grams, "
        f"{BANDS} bands x {ROWS} rows (112 hashes); ours also verifies candidates at estimated Jaccard >= 0.4. "
        f"Median of {args.repeats} run(s), each in its own subprocess (time includes interpreter start and "
        f"reading the JSONL). Planted near-duplicates: 3% word edits of real texts from ../shared/corpora.\n\n"
        f"{table}\n{ratio}\nCommand: `flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_dedup.py "
        f"--docs {args.docs} --repeats {args.repeats}`\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, inp, out, tmp = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
        {"ours": run_ours, "datatrove": run_datatrove}[tool](inp, out, tmp)
    else:
        main()
