"""Tokenize + pack + write throughput, side by side on the same documents, both sides doing the same work end to end.

Every row runs in a fresh subprocess (peak RSS is its own), `--repeat` times, interleaved round robin so that
background load hits the rows alike, and is reported as a median. In every row the clock starts before the
tokenizer library is imported and the tokenizer built, and stops when the output is on disk (fsynced):

- `raw tiktoken`: a plain script with tiktoken's fastest public API (`Encoding.encode_to_numpy`, the same
  buffer path ours uses): read the Parquet corpus row group by row group, encode every document and append
  EOT (`workers` threads, ~1 MB batches, in order), cut into `seq_len` sequences, write uint32 shard files with
  their sha256, a placements Parquet (doc id, offset, tokens) and a JSON manifest.
- `ours`: `sharding.build.build_stage_shards` (the tokenize, shard_plan and shards steps, in this process):
  read Parquet, hash the corpus, tokenize, select, pack, write uint32 shards + placements + manifest (exports
  off, as the raw side and datatrove write none). The mixture takes every document exactly once
  (`max_repeats = 1`, an unreachable `total_tokens`), so both sides pack the same tokens; ours shuffles them.
  `workers` is `num_proc`: encoder threads in one process, the same count the raw side gets.
- `raw HF tokenizers`: the raw script with the Qwen tokenizer.json (`Tokenizer.encode` per document).
- `datatrove`: `DocumentTokenizer` with the Qwen tokenizer.json, Parquet in, `.ds` out (goal: ours >= 4x).

Corpora: documents of the shared corpora (../shared/corpora), cycled up to `--mb` MB (1x) and twice that (2x),
written as DOCUMENT_SCHEMA Parquet corpora under benchmarks/out/. Run: `flock /tmp/cf-bench.lock python
benchmarks/bench_tokenize.py --mb 50` (`--skip hf datatrove` for the tiktoken comparison alone).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it

from benchmarks import harness
from benchmarks.harness import CORPORA

OUT = harness.OUT / "tokenize"
SEQ_LEN = 4096
BATCH_BYTES = 1 << 20  # text per encoder task on the raw side (ours: sharding.chunks.WORK_BYTES, also 1 MB)
ONE_PASS = {"seed": 0, "max_repeats": 1.0, "total_tokens": 10**15}  # every document exactly once
FILES = [  # (file, domain, source, fields)
    ("multilingual_udhr/udhr_full_selected.jsonl", "web", "udhr", ("text",)),
    ("code_permissive/code_files.jsonl", "code", "code_files", ("content",)),
    ("code_permissive/repo_licenses.jsonl", "web", "licenses", ("content",)),
    ("dedup_near_duplicate_pairs/near_dup_pairs.jsonl", "web", "pairs", ("text_a",)),
    ("stem_math/gsm8k_test.jsonl", "stem", "gsm8k", ("question", "answer")),
    ("stem_math/math500_test.jsonl", "stem", "math500", ("problem", "solution")),
    ("stem_math/math_test_sample_not_in_math500.jsonl", "stem", "math", ("problem", "solution")),
]


def make_corpus(mb: float, docs_dir: Path) -> Path:
    from core.io import ParquetSink
    from schemas import DOCUMENT_SCHEMA, Document, make_doc_id

    base = []
    for rel, domain, source, fields in FILES:
        for i, line in enumerate(open(CORPORA / rel, encoding="utf-8")):
            row = json.loads(line)
            text = "\n\n".join(str(row[k]) for k in fields if row.get(k))
            if text.strip():
                base.append((domain, source, f"{rel}:{i}", text))
    shutil.rmtree(docs_dir, ignore_errors=True)
    sinks: dict[tuple[str, str], ParquetSink] = {}
    # Interleave the files (every 7th document from each) so any prefix is a mix of all of them.
    base = [d for i in range(len(FILES)) for d in base[i :: len(FILES)]]
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


def text_bytes(docs_dir: Path) -> tuple[int, int]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    nbytes = docs = 0
    for p in sorted(docs_dir.rglob("*.parquet")):
        col = pq.read_table(p, columns=["text"])["text"]
        nbytes += int(pc.sum(pc.binary_length(col)).as_py() or 0)
        docs += len(col)
    return nbytes, docs


def raw_encoder(kind: str) -> tuple[Callable[[str], Any], int]:
    """The raw side's tokenizer: (text -> uint32 ids, the end-of-text id); o200k_harmony or the Qwen tokenizer.json."""
    import numpy as np

    if kind == "tiktoken":
        from sharding.tokenizer import load_tokenizer

        tok = load_tokenizer("o200k_harmony")
        enc = tok.encoding

        def encode(text: str) -> np.ndarray:
            return enc.encode_to_numpy(text, disallowed_special=())

        return encode, tok.eot_id
    from sharding.tokenizer import hf_tokenizer_path, load_tokenizer
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(hf_tokenizer_path("qwen")))

    def encode_hf(text: str) -> np.ndarray:
        return np.array(hf.encode(text, add_special_tokens=False).ids, dtype=np.uint32)

    return encode_hf, load_tokenizer("qwen").eot_id


def raw_batches(docs_dir: Path, ids: list[str]) -> Iterator[list[str]]:
    """The corpus's texts in ~`BATCH_BYTES` batches, row group by row group; appends each row's id to `ids`."""
    import pyarrow.parquet as pq

    for path in sorted(docs_dir.rglob("*.parquet")):
        pf = pq.ParquetFile(path)
        for rg in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(rg, columns=["id", "text"])
            ids.extend(t["id"].to_pylist())
            texts = t["text"].to_pylist()
            start = size = 0
            for i, text in enumerate(texts):
                size += len(text)
                if size >= BATCH_BYTES:
                    yield texts[start : i + 1]
                    start, size = i + 1, 0
            if start < len(texts):
                yield texts[start:]


def write_raw_output(tokens: Any, lengths: Any, ids: list[str], out: Path) -> None:
    """uint32 shard files (fsynced) with their sha256, a placements Parquet and a JSON manifest."""
    import hashlib
    import os

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    shards = []
    per = max(1, (1 << 28) // SEQ_LEN) * SEQ_LEN
    for j, a in enumerate(range(0, tokens.size, per)):
        data = memoryview(np.ascontiguousarray(tokens[a : a + per], dtype="<u4")).cast("B")
        with open(out / f"shard-{j:05d}.bin", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        shards.append(
            {"path": f"shard-{j:05d}.bin", "num_tokens": len(data) // 4, "sha256": hashlib.sha256(data).hexdigest()}
        )
    slot = lengths + 1
    offsets = np.concatenate([[0], np.cumsum(slot)[:-1]]) if slot.size else slot
    keep = offsets < tokens.size
    placements = pa.table(
        {
            "doc_id": pa.array(ids)[: int(keep.sum())],
            "offset": pa.array(offsets[keep]),
            "num_tokens": pa.array(lengths[keep]),
        }
    )
    pq.write_table(placements, out / "placements.parquet", compression="zstd")
    (out / "manifest.json").write_text(json.dumps({"seq_len": SEQ_LEN, "shards": shards}, indent=2))


def raw_pipeline(kind: str, docs_dir: Path, out: Path, workers: int) -> dict:
    """The raw side, end to end (see the module docstring). Returns seconds, tokens written, build seconds."""
    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    encode, eot = raw_encoder(kind)
    build_s = time.perf_counter() - t0
    eot_arr = np.array([eot], dtype=np.uint32)

    def encode_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [encode(t) for t in texts]
        lengths = np.array([p.size for p in parts], dtype=np.int64)
        return np.concatenate([x for p in parts for x in (p, eot_arr)]) if parts else eot_arr[:0], lengths

    ids: list[str] = []
    with ThreadPoolExecutor(workers) as pool:  # map submits every batch while this thread reads the next
        results = list(pool.map(encode_batch, raw_batches(docs_dir, ids)))
    tokens = np.concatenate([r[0] for r in results]) if results else np.zeros(0, np.uint32)
    lengths = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    tokens = tokens[: tokens.size // SEQ_LEN * SEQ_LEN]
    write_raw_output(tokens, lengths, ids, out)
    return {"seconds": time.perf_counter() - t0, "tokens": int(tokens.size), "build_s": build_s}


def run_one(kind: str, nproc: int, docs_dir: Path, tok: str) -> dict:
    """One measurement in this process (see the module docstring for where the clock starts and stops)."""
    out = OUT / "runs" / f"{kind}-{tok}-{nproc}-{docs_dir.parent.name}"
    shutil.rmtree(out, ignore_errors=True)
    nbytes, _ = text_bytes(docs_dir)
    if kind in ("tiktoken", "hf"):
        r = raw_pipeline(kind, docs_dir, out, nproc)
    elif kind == "ours":
        t0 = time.perf_counter()
        from sharding.build import build_stage_shards
        from sharding.tokenizer import load_tokenizer

        load_tokenizer(tok)  # inside the clock, as on the raw side; printed separately
        build_s = time.perf_counter() - t0
        stats = build_stage_shards(
            docs_dir,
            out,
            "general",
            ONE_PASS,
            {"tokenizer": tok, "seq_len": SEQ_LEN, "num_proc": nproc, "exports": []},
        )
        r = {"seconds": time.perf_counter() - t0, "tokens": stats["total_tokens"], "build_s": build_s}
    else:  # datatrove
        t0 = time.perf_counter()
        from datatrove.executor import LocalPipelineExecutor
        from datatrove.pipeline.readers import ParquetReader
        from datatrove.pipeline.tokens import DocumentTokenizer

        from sharding.tokenizer import hf_tokenizer_path

        pipeline = [
            ParquetReader(str(docs_dir), glob_pattern="**/*.parquet", text_key="text", id_key="id"),
            DocumentTokenizer(
                output_folder=str(out / "ds"),
                tokenizer_name_or_path=str(hf_tokenizer_path("qwen")),
                eos_token="<|endoftext|>",
                shuffle_documents=False,
            ),
        ]
        LocalPipelineExecutor(pipeline, tasks=nproc, workers=nproc, logging_dir=str(out / "logs")).run()
        r = {
            "seconds": time.perf_counter() - t0,
            "tokens": sum(p.stat().st_size for p in (out / "ds").rglob("*.ds")) // 4,
            "build_s": None,
        }
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"kind": kind, "tok": tok, "nproc": nproc, "bytes": nbytes, "rss_mb": max(self_rss, child_rss) / 1024, **r}


ROWS = [  # (label, kind, tokenizer, workers, size)
    *[
        (label, kind, "o200k_harmony", n, size)
        for size in ("1x", "2x")
        for n in (1, 2)
        for label, kind in (
            ("raw tiktoken encode_to_numpy (o200k_harmony)", "tiktoken"),
            ("ours tokenize+pack+write (o200k_harmony)", "ours"),
        )
    ],
    ("ours tokenize+pack+write (qwen)", "ours", "qwen", 1, "1x"),
    ("ours tokenize+pack+write (qwen)", "ours", "qwen", 2, "1x"),
    ("raw HF tokenizers encode (qwen tokenizer.json)", "hf", "qwen", 1, "1x"),
    ("datatrove DocumentTokenizer (qwen tokenizer.json)", "datatrove", "qwen", 1, "1x"),
    ("datatrove DocumentTokenizer (qwen tokenizer.json)", "datatrove", "qwen", 2, "1x"),
]
SLOW = {"hf", "datatrove"}  # ~40 s each on 50 MB: measured once


def main() -> int:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="1x corpus size in MB of UTF-8 text (2x: twice)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fast row (median reported)")
    parser.add_argument("--skip", nargs="*", default=[], help="kinds to skip (tiktoken, ours, hf, datatrove)")
    parser.add_argument("--one", nargs=4, metavar=("KIND", "TOK", "NPROC", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, tok, nproc, size = args.one
        print(json.dumps(run_one(kind, int(nproc), OUT / size / "docs", tok)))
        return 0
    if not CORPORA.is_dir():
        print(f"shared corpora not found at {CORPORA}", file=sys.stderr)
        return 2
    rows = [r for r in ROWS if r[1] not in args.skip]
    for size in sorted({r[4] for r in rows}):
        make_corpus(args.mb * (2 if size == "2x" else 1), OUT / size / "docs")
    runs: dict[int, list[dict]] = {i: [] for i in range(len(rows))}
    for rep in range(max(1, args.repeat)):
        for i, (_, kind, tok, nproc, size) in enumerate(rows):
            if rep and kind in SLOW:
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--one", kind, tok, str(nproc), size],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[i].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for size in sorted({r[4] for r in rows}):
        nbytes, docs = text_bytes(OUT / size / "docs")
        print(f"{size}: {nbytes / 1e6:.1f} MB of UTF-8 text, {docs:,} documents")
    print(
        f"Python {sys.version.split()[0]}, median of {args.repeat} runs (slow rows: 1); clocks include the tokenizer "
        "import and build and end with the output fsynced"
    )
    print("| pipeline | size | workers | runs | MB/s | min-max | Mtok/s | tokens written | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    speed = {}
    for i, (label, kind, tok, nproc, size) in enumerate(rows):
        rs = runs[i]
        mbs = [r["bytes"] / 1e6 / r["seconds"] for r in rs]
        med = statistics.median(mbs)
        speed[(kind, tok, nproc, size)] = med
        mtok = statistics.median(r["tokens"] / 1e6 / r["seconds"] for r in rs)
        print(
            f"| {label} | {size} | {nproc} | {len(rs)} | {med:.1f} | {min(mbs):.1f}-{max(mbs):.1f} | {mtok:.2f} | "
            f"{rs[0]['tokens']:,} | {max(r['rss_mb'] for r in rs):.0f} |"
        )
    for size in ("1x", "2x"):
        for n in (1, 2):
            ours, raw = (
                speed.get(("ours", "o200k_harmony", n, size)),
                speed.get(("tiktoken", "o200k_harmony", n, size)),
            )
            if ours and raw:
                print(f"ours / raw tiktoken, {size}, {n} worker(s): {ours / raw:.2f}x (goal >= 0.9x)")
    for n in (1, 2):
        ours, dt = speed.get(("ours", "qwen", n, "1x")), speed.get(("datatrove", "qwen", n, "1x"))
        if ours and dt:
            print(f"ours (qwen) / datatrove, 1x, {n} worker(s): {ours / dt:.2f}x (goal >= 4x)")
    for kind in ("tiktoken", "ours"):
        builds = [
            r["build_s"]
            for i, row in enumerate(rows)
            if row[1] == kind and row[2] == "o200k_harmony"
            for r in runs[i]
            if r["build_s"] is not None
        ]
        if builds:
            print(
                f"tokenizer import + build inside the clock ({kind}, o200k_harmony): median {statistics.median(builds):.2f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
