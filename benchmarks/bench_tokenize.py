"""Tokenize + pack + write throughput, side by side on the same documents, in one run.

Rows (each measured in a fresh subprocess, so peak RSS is its own; the fast rows `--repeat` times,
interleaved round robin so that background load hits them alike, and reported as medians):
- `raw tiktoken`: `encode_ordinary` per document over texts already in memory (the ceiling; goal: ours
  >= 0.9x of it). Its 2-process row times only the encode loops (pool start and reading excluded).
- `ours`: `sharding.build.build_stage_shards` end to end: read Parquet, hash the corpus, tokenize,
  select, pack, write uint32 shards + placements + manifest (exports off, as datatrove writes no Megatron
  files either). `procs` is `num_proc`: encoder threads in one process. The tokenizer is built before
  the clock starts, as in the raw rows (a one-off cost, printed separately).
- `HF tokenizers`: the Qwen tokenizer.json, `encode` per document, texts in memory.
- `datatrove`: `DocumentTokenizer` with the Qwen tokenizer.json, Parquet in, `.ds` out (goal: ours >= 4x).

Corpus: documents of the shared corpora (../shared/corpora), cycled up to `--mb` MB, written as a
DOCUMENT_SCHEMA Parquet corpus under benchmarks/out/. Run: `flock /tmp/cf-bench.lock python
benchmarks/bench_tokenize.py --mb 50`.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPORA = REPO.parent / "shared" / "corpora"
OUT = REPO / "benchmarks" / "out" / "tokenize"
FILES = [  # (file, domain, source, fields)
    ("multilingual_udhr/udhr_full_selected.jsonl", "web", "udhr", ("text",)),
    ("code_permissive/code_files.jsonl", "code", "code_files", ("content",)),
    ("code_permissive/repo_licenses.jsonl", "web", "licenses", ("content",)),
    ("dedup_near_duplicate_pairs/near_dup_pairs.jsonl", "web", "pairs", ("text_a",)),
    ("stem_math/gsm8k_test.jsonl", "stem", "gsm8k", ("question", "answer")),
    ("stem_math/math500_test.jsonl", "stem", "math500", ("problem", "solution")),
    ("stem_math/math_test_sample_not_in_math500.jsonl", "stem", "math", ("problem", "solution")),
]


def make_corpus(mb: float, out: Path) -> Path:
    from pipeline.io import ParquetSink
    from schemas import DOCUMENT_SCHEMA, Document, make_doc_id

    base = []
    for rel, domain, source, fields in FILES:
        for i, line in enumerate(open(CORPORA / rel, encoding="utf-8")):
            row = json.loads(line)
            text = "\n\n".join(str(row[k]) for k in fields if row.get(k))
            if text.strip():
                base.append((domain, source, f"{rel}:{i}", text))
    docs_dir = out / "docs"
    shutil.rmtree(docs_dir, ignore_errors=True)
    sinks: dict[tuple[str, str], ParquetSink] = {}
    # Interleave the files (every 7th document from each) so any prefix is a mix of all of them.
    base = [d for i in range(len(FILES)) for d in base[i::len(FILES)]]
    target, total, epoch = mb * 1e6, 0, 0
    while total < target:
        for domain, source, loc, text in base:
            if total >= target:
                break
            key = (domain, source)
            if key not in sinks:
                sinks[key] = ParquetSink(docs_dir / f"domain={domain}" / f"source={source}", DOCUMENT_SCHEMA)
            sinks[key].add(Document(make_doc_id(source, f"{loc}#{epoch}", text), text, source, domain).to_row())
            total += len(text.encode())
        epoch += 1
    for s in sinks.values():
        s.close()
    return docs_dir


def load_texts(docs_dir: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [t for p in sorted(docs_dir.rglob("*.parquet")) for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]


def _encode_part(args: tuple[str, str, int, int]) -> int:
    kind, docs_dir, part, nparts = args
    texts = load_texts(Path(docs_dir))[part::nparts]
    t0 = time.perf_counter()
    if kind == "tiktoken":
        from sharding.tokenizer import load_tokenizer

        enc = load_tokenizer("o200k_harmony").encoding
        n = sum(len(enc.encode_ordinary(t)) for t in texts)
    else:
        from sharding.tokenizer import hf_tokenizer_path
        from tokenizers import Tokenizer

        hf = Tokenizer.from_file(str(hf_tokenizer_path("qwen")))
        n = sum(len(hf.encode(t, add_special_tokens=False).ids) for t in texts)
    return n, time.perf_counter() - t0


def run_one(kind: str, nproc: int, docs_dir: Path, tok: str) -> dict:
    """One measurement (in this process); seconds exclude interpreter start and, for raw rows, reading."""
    nbytes = sum(len(t.encode()) for t in load_texts(docs_dir))
    load_s = None
    if kind in ("tiktoken", "hf"):
        if nproc == 1:
            tokens, seconds = _encode_part((kind, str(docs_dir), 0, 1))
        else:
            from multiprocessing import get_context

            with get_context("spawn").Pool(nproc) as pool:  # each worker loads its own share first
                res = pool.map(_encode_part, [(kind, str(docs_dir), i, nproc) for i in range(nproc)])
            tokens, seconds = sum(r[0] for r in res), max(r[1] for r in res)
    elif kind == "ours":
        from sharding.build import build_stage_shards
        from sharding.tokenizer import load_tokenizer

        out = OUT / f"ours-{tok}-{nproc}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        load_tokenizer(tok)  # cached per process: build_stage_shards gets this one
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = build_stage_shards(docs_dir, out, "general", {"seed": 0},
                                   {"tokenizer": tok, "seq_len": 4096, "num_proc": nproc, "exports": []})  # fmt: skip
        seconds = time.perf_counter() - t0
        tokens = stats["tokenize"]["tokens"]
    else:  # datatrove
        from datatrove.executor import LocalPipelineExecutor
        from datatrove.pipeline.readers import ParquetReader
        from datatrove.pipeline.tokens import DocumentTokenizer

        from sharding.tokenizer import hf_tokenizer_path

        out = OUT / f"datatrove-{nproc}"
        shutil.rmtree(out, ignore_errors=True)
        pipeline = [
            ParquetReader(str(docs_dir), glob_pattern="**/*.parquet", text_key="text", id_key="id"),
            DocumentTokenizer(output_folder=str(out / "ds"), tokenizer_name_or_path=str(hf_tokenizer_path("qwen")),
                              eos_token="<|endoftext|>", shuffle_documents=False),  # fmt: skip
        ]
        t0 = time.perf_counter()
        LocalPipelineExecutor(pipeline, tasks=nproc, workers=nproc, logging_dir=str(out / "logs")).run()
        seconds = time.perf_counter() - t0
        tokens = sum(p.stat().st_size for p in (out / "ds").rglob("*.ds")) // 4
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"kind": kind, "tok": tok, "nproc": nproc, "seconds": seconds, "tokens": tokens, "bytes": nbytes,
            "rss_mb": max(self_rss, child_rss) / 1024, "load_s": load_s}  # fmt: skip


ROWS = [  # (label, kind, tokenizer, processes)
    ("raw tiktoken encode_ordinary (o200k_harmony)", "tiktoken", "o200k_harmony", 1),
    ("ours tokenize+pack+write (o200k_harmony)", "ours", "o200k_harmony", 1),
    ("raw tiktoken encode_ordinary (o200k_harmony)", "tiktoken", "o200k_harmony", 2),
    ("ours tokenize+pack+write (o200k_harmony)", "ours", "o200k_harmony", 2),
    ("ours tokenize+pack+write (qwen)", "ours", "qwen", 1),
    ("ours tokenize+pack+write (qwen)", "ours", "qwen", 2),
    ("HF tokenizers encode (qwen tokenizer.json)", "hf", "qwen", 1),
    ("datatrove DocumentTokenizer (qwen tokenizer.json)", "datatrove", "qwen", 1),
    ("datatrove DocumentTokenizer (qwen tokenizer.json)", "datatrove", "qwen", 2),
]
SLOW = {"hf", "datatrove"}  # ~40 s each on 50 MB: measured once


def main() -> int:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB of UTF-8 text")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fast row (median reported)")
    parser.add_argument("--skip", nargs="*", default=[], help="kinds to skip (tiktoken, ours, hf, datatrove)")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "TOK", "NPROC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    docs_dir = OUT / "docs"
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[2]), docs_dir, args.one[1])))
        return 0
    if not CORPORA.is_dir():
        print(f"shared corpora not found at {CORPORA}", file=sys.stderr)
        return 2
    make_corpus(args.mb, OUT)
    rows = [r for r in ROWS if r[1] not in args.skip]
    runs: dict[int, list[dict]] = {i: [] for i in range(len(rows))}
    for rep in range(max(1, args.repeat)):
        for i, (_, kind, tok, nproc) in enumerate(rows):
            if rep and kind in SLOW:
                continue
            out = subprocess.run([sys.executable, __file__, "--one", kind, tok, str(nproc)], capture_output=True,
                                 text=True, check=True)  # fmt: skip
            runs[i].append(json.loads(out.stdout.strip().splitlines()[-1]))
    nbytes = runs[0][0]["bytes"]
    print(f"\n{nbytes / 1e6:.1f} MB of UTF-8 text, {len(load_texts(docs_dir)):,} documents, Python "
          f"{sys.version.split()[0]}, median of {args.repeat} runs (slow rows: 1)")  # fmt: skip
    print(f"{'pipeline':<52}{'procs':>6}{'runs':>5}{'MB/s':>8}{'min-max':>12}{'Mtok/s':>8}{'tokens':>13}{'peak RSS MB':>13}")
    speed = {}
    for i, (label, kind, tok, nproc) in enumerate(rows):
        rs = runs[i]
        mbs = [r["bytes"] / 1e6 / r["seconds"] for r in rs]
        med = statistics.median(mbs)
        speed[(kind, tok, nproc)] = med
        mtok = statistics.median(r["tokens"] / 1e6 / r["seconds"] for r in rs)
        print(f"{label:<52}{nproc:>6}{len(rs):>5}{med:>8.1f}{f'{min(mbs):.1f}-{max(mbs):.1f}':>12}{mtok:>8.2f}"
              f"{rs[0]['tokens']:>13,}{max(r['rss_mb'] for r in rs):>13.0f}")  # fmt: skip
    for n in (1, 2):
        if ("ours", "o200k_harmony", n) in speed and ("tiktoken", "o200k_harmony", n) in speed:
            print(f"ours / raw tiktoken, {n} proc: {speed[('ours', 'o200k_harmony', n)] / speed[('tiktoken', 'o200k_harmony', n)]:.2f}x (goal >= 0.9x)")
        if ("ours", "qwen", n) in speed and ("datatrove", "qwen", n) in speed:
            print(f"ours (qwen) / datatrove, {n} proc: {speed[('ours', 'qwen', n)] / speed[('datatrove', 'qwen', n)]:.2f}x (goal >= 4x)")
    for tok in ("o200k_harmony", "qwen"):
        loads = [r["load_s"] for i, r2 in enumerate(rows) if r2[1] == "ours" and r2[2] == tok for r in runs[i]]
        if loads:
            print(f"tokenizer build ({tok}), excluded from ours: median {statistics.median(loads):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
