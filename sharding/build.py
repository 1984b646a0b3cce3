"""`build_stage_shards`: a stage's final corpus -> packed uint32 shards, placements index, manifest, exports.

Layout of `<out_dir>/<stage>/`::

    manifest.json                     # the trainer handoff (sharding/manifest.py)
    shard-00000.bin ...               # num_sequences * seq_len little-endian uint32 ids each
    placements/shard-00000.parquet    # where each document's ids landed (PLACEMENT_SCHEMA)
    exports/datatrove/*.ds*, exports/megatron/*.bin|idx
    .work/tokens/                     # tokenized chunks (resume cache; removed on success)
    .progress.jsonl                   # finished shards of the current plan (removed on success)

CLI: `python -m sharding.build --corpus runs/general/corpus/docs --out runs/general/shards general [--dry-run]`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.io import file_sha256, fingerprint, write_table
from sharding import manifest as mf
from sharding.exports import write_exports
from sharding.mixture import MixtureConfig, SourceBudget, format_budget_table, plan_budget
from sharding.pack import (
    TOKENIZE_VERSION,
    Bucket,
    DocTable,
    SequencePlan,
    available_by_source,
    list_chunks,
    load_doc_table,
    plan_sequences,
    read_doc_meta,
    select_documents,
    shard_pieces,
    tokenize_corpus,
)
from sharding.writer import JOURNAL, Journal, shard_name, write_shard

log = logging.getLogger(__name__)

PLACEMENT_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),  # shard file, relative to the manifest
        pa.field("offset", pa.int64(), nullable=False),  # first id's position in the shard, in tokens
        pa.field("num_tokens", pa.int64(), nullable=False),  # ids of this piece (its EOT not counted)
        pa.field("doc_token_offset", pa.int64(), nullable=False),  # where the piece starts inside the document
        pa.field("sequence", pa.int64(), nullable=False),  # global sequence index in the stage
        pa.field("repeat", pa.int32(), nullable=False),  # 0 = first pass over the source, 1 = second, ...
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
    ]
)
_SHARD_KEYS = {"tokenizer", "seq_len", "shard_tokens", "num_proc", "exports", "buckets", "keep_token_cache"}


@dataclass(frozen=True)
class ShardsConfig:
    """The `[shards]` table of a stage config.

    Args:
        tokenizer: a spec in tokenizers/ ("o200k_harmony", "qwen").
        seq_len: tokens per packed sequence (Qwen3: 4096 in S1/S2, 32768 in S3).
        shard_tokens: target tokens per shard file, rounded down to whole sequences (at least one).
        num_proc: tokenizer workers: threads, as tiktoken encodes without the GIL (output does not depend on it).
        exports: any of "datatrove", "megatron".
        buckets: document-length buckets with the fraction of sequences each supplies; none = one bucket.
        keep_token_cache: keep `.work/tokens` after success (a rerun with a new mixture skips tokenizing).
    """

    tokenizer: str = "o200k_harmony"
    seq_len: int = 4096
    shard_tokens: int = 1 << 28  # 1 GiB of uint32
    num_proc: int = 1
    exports: tuple[str, ...] = ("datatrove", "megatron")
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)
    keep_token_cache: bool = False

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ValueError(f"[shards] seq_len = {self.seq_len}: must be >= 2")
        if self.shard_tokens < 1 or self.num_proc < 1:
            raise ValueError(f"[shards] shard_tokens and num_proc must be >= 1, got {self.shard_tokens}, {self.num_proc}")
        if self.buckets and abs(sum(b.fraction for b in self.buckets) - 1.0) > 1e-6:
            raise ValueError(f"[shards] bucket fractions {[b.fraction for b in self.buckets]} must sum to 1")

    @property
    def sequences_per_shard(self) -> int:
        return max(1, self.shard_tokens // self.seq_len)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> ShardsConfig:
        cfg = dict(cfg or {})
        unknown = set(cfg) - _SHARD_KEYS
        if unknown:
            raise ValueError(f"[shards] unknown key(s) {sorted(unknown)}; allowed: {sorted(_SHARD_KEYS)}")
        buckets = tuple(Bucket(**b) for b in cfg.pop("buckets", []))
        exports = tuple(cfg.pop("exports", ("datatrove", "megatron")))
        return cls(**cfg, buckets=buckets, exports=exports)

    def output_config(self) -> dict[str, Any]:
        """What decides the output bytes (num_proc and keep_token_cache do not)."""
        return {"tokenizer": self.tokenizer, "seq_len": self.seq_len, "sequences_per_shard": self.sequences_per_shard,
                "exports": list(self.exports), "buckets": [b.__dict__ for b in self.buckets]}  # fmt: skip


def _estimate_available(chunks: list, tok: Any, sample_bytes: int = 1 << 20) -> dict[tuple[str, str], tuple[int, int]]:
    """Token counts estimated from UTF-8 bytes and a tokenized sample (the first ~1 MB of each source)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    acc: dict[tuple[str, str], list[int]] = {}  # docs, bytes, sample bytes, sample tokens
    for c in chunks:
        t = pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["text", "source", "domain"])
        nbytes = pc.binary_length(t.column("text")).to_pylist()
        for text, src, dom, nb in zip(t.column("text").to_pylist(), t.column("source").to_pylist(),
                                      t.column("domain").to_pylist(), nbytes):  # fmt: skip
            a = acc.setdefault((dom, src), [0, 0, 0, 0])
            a[0] += 1
            a[1] += nb
            if a[2] < sample_bytes:
                a[2] += nb
                a[3] += len(tok.encode_np(text))
    return {k: (a[0], int(round(a[1] * (a[3] / a[2] if a[2] else 0.25))) + a[0]) for k, a in acc.items()}


def _strings(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes, pa.int32()))


def _build_shard(plan: SequencePlan, docs: DocTable, first: int, stop: int, seq_len: int, eot_id: int,
                 name: str) -> tuple[np.ndarray, pa.Table]:  # fmt: skip
    """Sequences [first, stop) as one uint32 array, and their placement rows (pieces with ids)."""
    p = shard_pieces(plan, first, stop, seq_len)
    arr = np.empty((stop - first) * seq_len, dtype=np.uint32)
    filled = int(p.num_ids.sum()) + int(p.eot.sum())
    assert filled == arr.size, f"shard {name}: pieces cover {filled} tokens, expected {arr.size}"
    arr[(p.offset + p.num_ids)[p.eot]] = eot_id
    keep = p.num_ids > 0
    doc, n, offset = p.doc[keep], p.num_ids[keep], p.offset[keep]
    docs.gather(arr, doc, p.doc_start[keep], n, offset)
    columns = {
        "doc_id": docs.ids.take(pa.array(doc)),
        "shard": _strings([name], np.zeros(doc.size, dtype=np.int32)),
        "offset": pa.array(offset, pa.int64()),
        "num_tokens": pa.array(n, pa.int64()),
        "doc_token_offset": pa.array(p.doc_start[keep], pa.int64()),
        "sequence": pa.array(p.sequence[keep], pa.int64()),
        "repeat": pa.array(p.repeat[keep], pa.int32()),
        "source": _strings(docs.source_names, docs.source[doc]),
        "domain": _strings(docs.domain_names, docs.domain[doc]),
        "bucket": _strings([s.bucket for s in plan.streams], p.stream[keep].astype(np.int32)),
    }
    return arr, pa.Table.from_arrays([columns[f.name] for f in PLACEMENT_SCHEMA], schema=PLACEMENT_SCHEMA)


def _write_index(path: Path, placements: pa.Table) -> str:
    write_table(path, placements, PLACEMENT_SCHEMA)
    return file_sha256(path)


def _cached(manifest_path: Path, corpus_sha: str, config_sha: str) -> dict[str, Any] | None:
    try:
        m = mf.read_manifest(manifest_path)
    except mf.ManifestError:
        return None
    if m["inputs"] != {"corpus_sha256": corpus_sha, "config_sha256": config_sha}:
        return None
    for s in m["shards"]:
        p = manifest_path.parent / s["path"]
        if not p.is_file() or p.stat().st_size != s["num_tokens"] * 4:
            return None
    return m


def build_stage_shards(corpus_docs_dir: Path, out_dir: Path, stage: str, mixture_cfg: dict, shards_cfg: dict,
                       dry_run: bool = False) -> dict[str, Any]:  # fmt: skip
    """Tokenize, mix, pack and write a stage's shards and manifest.

    Args:
        corpus_docs_dir: Hive-partitioned Parquet of DOCUMENT_SCHEMA rows (read in sorted path order).
        out_dir: shards root; writes `out_dir/<stage>/manifest.json` and its files.
        stage: stage name (general, reasoning, long_context).
        mixture_cfg: the stage's `[mixture]` table (sharding/mixture.py).
        shards_cfg: the stage's `[shards]` table (ShardsConfig).
        dry_run: print the token budget per source (estimated from bytes) and write nothing.

    Returns:
        stats: stage, tokenizer, seq_len, total_tokens, num_sequences, num_shards, budget rows, packing
        counts, manifest path, `skipped` (an identical manifest with intact files already existed).
    """
    from sharding.tokenizer import load_tokenizer

    t0 = time.perf_counter()
    corpus_docs_dir, out_dir = Path(corpus_docs_dir), Path(out_dir)
    mix = MixtureConfig.from_dict(mixture_cfg)
    sc = ShardsConfig.from_dict(shards_cfg)
    tok = load_tokenizer(sc.tokenizer)
    chunks, corpus_sha = list_chunks(corpus_docs_dir, f"{tok.name}:{tok.vocab_sha256}")
    config_sha = fingerprint(stage, mixture_cfg, sc.output_config(), tok.describe(), mf.VERSION, TOKENIZE_VERSION)
    buckets = list(sc.buckets) or [Bucket("all")]

    if dry_run:
        rows = plan_budget(_estimate_available(chunks, tok), mix)
        table = format_budget_table(stage, rows, tok.name, sc.seq_len, estimated=True)
        print(table)
        return {"stage": stage, "dry_run": True, "budget": [_row(r) for r in rows], "table": table,
                "budget_tokens": sum(r.budget for r in rows)}  # fmt: skip

    stage_dir = out_dir / stage
    manifest_path = stage_dir / "manifest.json"
    cached = _cached(manifest_path, corpus_sha, config_sha)
    if cached is not None:
        log.info("shards for stage %s are up to date: %s", stage, manifest_path)
        return {**_summary(cached, manifest_path), "skipped": True}

    stage_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # an old manifest must never describe new shard files
    work = stage_dir / ".work" / "tokens"
    t_tok = time.perf_counter()
    with ThreadPoolExecutor(1) as helper:  # ids and sources are read while the encoders run
        meta = helper.submit(read_doc_meta, chunks)
        tstats = tokenize_corpus(chunks, tok.name, work, sc.num_proc)
        t_tok = time.perf_counter() - t_tok
        docs = load_doc_table(chunks, work, meta.result())
    rows = plan_budget(available_by_source(docs), mix)
    doc_idx, reps, realized = select_documents(docs, {r.source: r.budget for r in rows}, mix.seed)
    for r in rows:
        r.realized = realized.get(r.source, 0)
    table = format_budget_table(stage, rows, tok.name, sc.seq_len, estimated=False)
    print(table)
    plan = plan_sequences(docs, doc_idx, reps, sc.seq_len, buckets, mix.seed)

    journal = Journal(stage_dir, fingerprint(corpus_sha, config_sha))
    per = sc.sequences_per_shard
    n_seq = plan.stats["num_sequences"]
    shards, index_files, written = [], [], 0
    (stage_dir / "placements").mkdir(exist_ok=True)
    with ThreadPoolExecutor(1) as helper:
        for j in range((n_seq + per - 1) // per):
            name = shard_name(j)
            part = f"placements/{Path(name).stem}.parquet"
            rec = journal.completed(stage_dir, name)
            if rec is None or not (stage_dir / part).is_file():
                first, stop = j * per, min((j + 1) * per, n_seq)
                arr, placements = _build_shard(plan, docs, first, stop, sc.seq_len, tok.eot_id, name)
                index = helper.submit(_write_index, stage_dir / part, placements)  # beside the shard's write
                digest = write_shard(stage_dir / name, arr)
                rec = {"path": name, "num_tokens": int(arr.size), "num_sequences": stop - first, "sha256": digest,
                       "index": part, "index_sha256": index.result()}  # fmt: skip
                journal.add(rec)
                written += 1
            shards.append({k: rec[k] for k in ("path", "num_tokens", "num_sequences", "sha256")})
            index_files.append({"path": rec["index"], "sha256": rec["index_sha256"]})
    _remove_stale(stage_dir, {s["path"] for s in shards}, {f["path"] for f in index_files})
    exports = write_exports(stage_dir, shards, tok.describe(), list(sc.exports))
    manifest = {
        "format": mf.FORMAT,
        "version": mf.VERSION,
        "stage": stage,
        "seq_len": sc.seq_len,
        "dtype": "uint32",
        "tokenizer": tok.describe(),
        "total_tokens": sum(s["num_tokens"] for s in shards),
        "num_sequences": n_seq,
        "shards": shards,
        "inputs": {"corpus_sha256": corpus_sha, "config_sha256": config_sha},
        "index": {"path": "placements", "format": "parquet", "schema": [f.name for f in PLACEMENT_SCHEMA],
                  "files": index_files},  # fmt: skip
        "exports": exports,
        "mixture": [_row(r) for r in rows],
        "packing": {k: v for k, v in plan.stats.items()},
    }
    mf.write_manifest(manifest_path, manifest)
    (stage_dir / JOURNAL).unlink(missing_ok=True)
    if not sc.keep_token_cache:
        shutil.rmtree(stage_dir / ".work", ignore_errors=True)
    elapsed = time.perf_counter() - t0
    stats = {**_summary(manifest, manifest_path), "skipped": False, "shards_written": written, "table": table,
             "tokenize": {**tstats, "seconds": round(t_tok, 3)}, "seconds": round(elapsed, 3)}  # fmt: skip
    return stats


def _row(r: SourceBudget) -> dict[str, Any]:
    return {"source": r.source, "domain": r.domain, "docs": r.docs, "available_tokens": r.available,
            "share": round(r.share, 6), "budget_tokens": r.budget, "epochs": round(r.epochs, 4),
            "max_repeats": r.cap, "selected_tokens": r.realized}  # fmt: skip


def _summary(m: dict[str, Any], path: Path) -> dict[str, Any]:
    return {"stage": m["stage"], "manifest": str(path), "tokenizer": m["tokenizer"]["name"], "seq_len": m["seq_len"],
            "total_tokens": m["total_tokens"], "num_sequences": m["num_sequences"], "num_shards": len(m["shards"]),
            "budget": m.get("mixture", []), "packing": m.get("packing", {})}  # fmt: skip


def _remove_stale(stage_dir: Path, shard_names: set[str], index_names: set[str]) -> None:
    """Shards of an earlier, larger plan must not linger beside the new manifest."""
    for p in stage_dir.glob("shard-*.bin"):
        if p.name not in shard_names:
            p.unlink()
    for p in (stage_dir / "placements").glob("*.parquet"):
        if f"placements/{p.name}" not in index_names:
            p.unlink()
    shutil.rmtree(stage_dir / "exports", ignore_errors=True)


def load_stage_tables(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `[mixture]` and `[shards]` tables of a stage config file."""
    data = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    return data.get("mixture", {}), data.get("shards", {})


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import STAGES, STAGES_DIR

    parser = argparse.ArgumentParser(prog="python -m sharding.build", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--corpus", type=Path, help="final corpus docs (default: runs/<stage>/corpus/docs)")
    parser.add_argument("--out", type=Path, help="shards root (default: runs/<stage>/shards)")
    parser.add_argument("--config", type=Path, help="stage config (default: configs/stages/<stage>.toml)")
    parser.add_argument("--num-proc", type=int, help="tokenizer threads (overrides [shards] num_proc)")
    parser.add_argument("--dry-run", action="store_true", help="print the token budget per source; write nothing")
    args = parser.parse_args(argv)
    mixture, shards = load_stage_tables(args.config or STAGES_DIR / f"{args.stage}.toml")
    if args.num_proc:
        shards = {**shards, "num_proc": args.num_proc}
    corpus = args.corpus or Path("runs") / args.stage / "corpus" / "docs"
    if not corpus.is_dir():
        print(f"error: corpus {corpus} not found; run `python -m flows.stage {args.stage}` first", file=sys.stderr)
        return 2
    try:
        stats = build_stage_shards(corpus, args.out or Path("runs") / args.stage / "shards", args.stage, mixture,
                                   shards, dry_run=args.dry_run)  # fmt: skip
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.dry_run:
        print(f"{stats['manifest']}: {stats['num_shards']} shards, {stats['num_sequences']:,} sequences of "
              f"{stats['seq_len']:,}, {stats['total_tokens']:,} tokens{' (up to date)' if stats['skipped'] else ''}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
