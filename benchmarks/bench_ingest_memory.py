"""Peak memory of ingest with large documents: the readers into a ParquetSink, one input format per process.

Writes `--total-mb` of documents of `--doc-mb` each (distinct random words) into a temporary folder as JSONL,
JSONL.gz, JSONL.zst, Parquet (row groups of `--rows-per-group` documents, and, to show the limit, one row
group) and one text file per document; then, for each format, a fresh child process runs
`read_source` -> `Document.to_row()` -> `ParquetSink(DOCUMENT_SCHEMA)` exactly as the ingest unit does, and
reports its peak RSS (VmHWM) and the RSS after its imports (the baseline). `--sink-bytes 0`
gives the sink no byte bound (only its 100k-row one), as before issue 12; `--sink-bytes -1` drops the rows
(the readers alone).

    nice -n 10 .venv/bin/python benchmarks/bench_ingest_memory.py --total-mb 421 --doc-mb 7
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet", "parquet-1group", "text")


def _texts(n_docs: int, doc_bytes: int, seed: int = 0):
    """`n_docs` texts of about `doc_bytes` each, made of random words (so they neither compress to nothing
    nor repeat), one at a time."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    block = " ".join(rng.choice(words) for _ in range(200_000)).encode()[: 1 << 20].decode()  # ~1 MB
    for i in range(n_docs):
        parts, size = [f"document {i}."], 0
        while size < doc_bytes:
            start = rng.randrange(len(block) // 2)
            piece = block[start : start + (1 << 19)]
            parts.append(piece)
            size += len(piece)
        yield " ".join(parts)[:doc_bytes]


def write_inputs(folder: Path, n_docs: int, doc_bytes: int, rows_per_group: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    for fmt in FORMATS:
        (folder / fmt).mkdir(parents=True)
    with (
        open(folder / "jsonl" / "docs.jsonl", "wb") as plain,
        gzip.open(folder / "jsonl.gz" / "docs.jsonl.gz", "wb", compresslevel=1) as gz,
        open(folder / "jsonl.zst" / "docs.jsonl.zst", "wb") as zraw,
    ):
        zw = zstandard.ZstdCompressor(level=1).stream_writer(zraw)
        schema = pa.schema([("text", pa.string())])
        grouped = pq.ParquetWriter(folder / "parquet" / "docs.parquet", schema)
        one_group: list[str] = []
        group: list[str] = []
        for i, text in enumerate(_texts(n_docs, doc_bytes)):
            line = json.dumps({"text": text}).encode() + b"\n"
            plain.write(line)
            gz.write(line)
            zw.write(line)
            (folder / "text" / f"doc{i:05d}.txt").write_text(text)
            group.append(text)
            if len(group) == rows_per_group:
                grouped.write_table(pa.table({"text": group}, schema=schema))
                group = []
            one_group.append(text)
        if group:
            grouped.write_table(pa.table({"text": group}, schema=schema))
        grouped.close()
        zw.flush(zstandard.FLUSH_FRAME)
        # One row group (pyarrow's default for fewer than 1M rows): its pages hold up to 1024 rows each, and a
        # page must be decoded whole, so this shows where a writer's layout sets the floor.
        pq.write_table(pa.table({"text": one_group}, schema=schema), folder / "parquet-1group" / "docs.parquet")


def _status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB. (Not `ru_maxrss`: Linux keeps it across
    fork and exec, so a child would report its parent's peak; VmHWM belongs to the exec'd image.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


class _NullSink:
    def add(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


def child(fmt: str, folder: Path, out: Path, sink_bytes: int, max_doc_bytes: int) -> dict:
    from core.io import ParquetSink
    from ingest.readers import read_source
    from ingest.sources import SourceSpec
    from schemas import DOCUMENT_SCHEMA, QUARANTINE_SCHEMA, Document

    base = _status_kb("VmRSS")
    pattern = {"text": "text/*.txt", "parquet-1group": "parquet-1group/*.parquet"}.get(fmt, f"{fmt}/*")
    spec = SourceSpec(
        name="big",
        domain="web",
        format=fmt.split("-")[0].split(".")[0],
        paths=(pattern,),
        base_dir=folder,
        max_doc_bytes=max_doc_bytes,
    )
    if sink_bytes < 0:  # the readers alone: rows are made and dropped
        docs = quarantine = _NullSink()
    else:
        kwargs = {"max_bytes": sink_bytes} if sink_bytes else {"max_bytes": 1 << 62}
        docs = ParquetSink(out / "docs", DOCUMENT_SCHEMA, **kwargs)
        quarantine = ParquetSink(out / "quarantine", QUARANTINE_SCHEMA, **kwargs)
    t0, n_docs, n_bad, text_bytes = time.perf_counter(), 0, 0, 0
    for record in read_source(spec):
        if isinstance(record, Document):
            docs.add(record.to_row())
            n_docs += 1
            text_bytes += len(record.text)
        else:
            quarantine.add(record.to_row())
            n_bad += 1
    docs.close()
    quarantine.close()
    peak = _status_kb("VmHWM")
    return {
        "format": fmt,
        "docs": n_docs,
        "quarantined": n_bad,
        "text_mb": text_bytes / 2**20,
        "baseline_mb": base / 1024,
        "peak_mb": peak / 1024,
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total-mb", type=float, default=421)
    ap.add_argument("--doc-mb", type=float, default=7)
    ap.add_argument("--rows-per-group", type=int, default=8)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument(
        "--sink-bytes",
        default="default",
        help="'default' (core.io's), 0 (no byte bound), -1 (no sink: the readers alone) or bytes",
    )
    ap.add_argument("--max-doc-mb", type=float, default=8)
    ap.add_argument("--child", nargs=3, metavar=("FORMAT", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    from core.io import MAX_BUFFER_BYTES

    sink_bytes = MAX_BUFFER_BYTES if args.sink_bytes == "default" else int(args.sink_bytes)
    max_doc = int(args.max_doc_mb * 2**20)
    if args.child:
        fmt, inputs, out = args.child
        print(json.dumps(child(fmt, Path(inputs), Path(out), sink_bytes, max_doc)))
        return
    doc_bytes = int(args.doc_mb * 2**20)
    n_docs = max(1, int(args.total_mb * 2**20 // doc_bytes))
    with tempfile.TemporaryDirectory(prefix="cf-ingest-mem-") as tmp:
        folder = Path(tmp) / "in"
        t0 = time.perf_counter()
        write_inputs(folder, n_docs, doc_bytes, args.rows_per_group)
        print(
            f"wrote {n_docs} documents of {args.doc_mb} MB per format in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        rows = []
        for fmt in args.formats.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                fmt,
                str(folder),
                str(Path(tmp) / f"out-{fmt}"),
                "--sink-bytes",
                str(sink_bytes),
                "--max-doc-mb",
                str(args.max_doc_mb),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    bound = {0: "none (100k rows)", -1: "no sink (readers alone)"}.get(sink_bytes, f"{sink_bytes / 2**20:.0f} MB")
    print(
        f"\n{n_docs} documents x {args.doc_mb} MB; sink byte bound: {bound}; Parquet row groups of "
        f"{args.rows_per_group} rows (parquet) or one (parquet-1group)\n"
    )
    print("| format | docs | quarantined | text MB | RSS after imports MB | peak RSS MB | peak - base MB | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['format']} | {r['docs']} | {r['quarantined']} | {r['text_mb']:.0f} | {r['baseline_mb']:.0f} "
            f"| {r['peak_mb']:.0f} | {r['peak_mb'] - r['baseline_mb']:.0f} | {r['seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
