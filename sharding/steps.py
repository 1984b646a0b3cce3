"""A stage's shards as work units (pipeline/step.py): the final corpus -> packed uint32 shards, their placements
index, exports and manifest, byte-identical at any worker count and resumable per unit.

    tokenize     one unit per corpus chunk (a Parquet row group; key = hash of the file's bytes, the row group
                 and the tokenizer): `<key>.tok` + `<key>.len.npy`, encoded by `num_proc` threads
    shard_plan   one unit: the documents' table, the budget per source, the selected documents and the packed
                 sequence plan, saved as arrays (np.save) that every shard unit memory-maps
    shards       one unit per shard (`shard-00000`): `shard-00000.bin` (uint32 ids) and `shard-00000.parquet`
                 (its placements); reduce: `manifest.json` and the export index files
    publish      `shards/<stage>/` = hard links of the shard units' files and the reduce's, built beside it
                 (`<stage>.tmp-<host>-<pid>`) and swapped in; the exports' token files are links of the shards

NOTE: the plan is a step of its own, not the tokenize step's reduce: a reduce reruns only when its step's
fingerprint (the same one its units carry) or a unit's output changes, so the mixture would have to be part of
the tokenize fingerprint, and a new mixture would tokenize the whole corpus again.

Publishing `shards/<stage>/` and reusing only what verifies are `sharding/publish.py`'s, the plan's files
`sharding/plan_io.py`'s, the budget rows and the build's summary `sharding/budget.py`'s.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core.io import atomic_write_json, file_sha256, fingerprint, write_table
from pipeline.layout import RunLayout
from pipeline.runner import StepResult
from pipeline.step import Step, Unit, UnitResult, UnitWriter
from sharding import manifest as mf
from sharding.budget import budget_row, build_summary, estimate_available
from sharding.chunks import TOKENIZE_VERSION, Chunk, list_chunks, tokenize_chunk
from sharding.config import ShardsConfig
from sharding.doc_table import DocTable, load_doc_table, read_cluster_sizes, read_doc_meta
from sharding.exports import write_export_indexes
from sharding.mixture import MixtureConfig, format_budget_table, plan_budget
from sharding.pack import Bucket, SequencePlan, plan_sequences, select_documents, shard_pieces
from sharding.plan_io import PLAN_JSON, cached_plan, save_plan
from sharding.publish import discard_damaged, publish_shards, verified_manifest
from sharding.score_buckets import bucket_cells
from sharding.writer import shard_key, write_shard

log = logging.getLogger(__name__)

TOKENIZE, PLAN, SHARDS = "tokenize", "shard_plan", "shards"
SHARD_RECORD = "shard.json"

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


# --- tokenize: one unit per chunk ------------------------------------------------------------------------


class TokenizeStep(Step):
    """Args:
    chunks: `list_chunks` of the corpus (chunks with equal keys, i.e. equal bytes, are tokenized once).
    tokenizer: the tokenizer's `describe()`.
    num_proc: encoder threads inside a unit.
    """

    name = TOKENIZE

    def __init__(self, chunks: list[Chunk], tokenizer: dict[str, Any], num_proc: int = 1) -> None:
        self.chunks = chunks
        self.tokenizer = tokenizer
        self.num_proc = num_proc

    def __getstate__(self) -> dict[str, Any]:
        # Executors pickle the step with every unit: the chunk list would make that quadratic in the chunks.
        return {**self.__dict__, "chunks": []}

    def config(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "version": TOKENIZE_VERSION}

    def fingerprint(self) -> str:
        # NOTE: no code version: ids change only with the tokenizer or TOKENIZE_VERSION, and retokenizing a
        # corpus because a filter was edited would cost hours.
        return fingerprint(self.name, self.config())

    def units(self) -> list[Unit]:
        units: dict[str, Unit] = {}
        for c in self.chunks:
            units.setdefault(
                c.key, Unit(c.key, c.key, {"path": str(c.path), "row_group": c.row_group, "num_docs": c.num_docs})
            )
        return list(units.values())

    def run(self, unit: Unit, out: UnitWriter) -> None:
        from sharding.tokenizer import load_tokenizer

        p = unit.payload
        chunk = Chunk(Path(p["path"]), p["row_group"], p["num_docs"], unit.key)
        counts = tokenize_chunk(chunk, load_tokenizer(self.tokenizer["name"]), out.dir / unit.key, self.num_proc)
        out.read(counts["docs"])
        out.stats.docs_out = counts["docs"]
        out.stats.extra.update(tokens=counts["tokens"], bytes=counts["bytes"])

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)


# --- shard_plan: one unit -------------------------------------------------------------------------------


class PlanStep(Step):
    """Budget, selection and packing plan over the tokenized corpus: one unit, `plan`.

    Args:
        tokenized: the finished tokenize step.
        chunks: the corpus chunks, in corpus order.
        stage, mixture, shards: the stage name, its `[mixture]` (validated) and `[shards]` tables.
        corpus_sha, config_sha: the manifest's `inputs` (config_sha covers mixture, shards, tokenizer, versions).
    """

    name = PLAN

    def __init__(
        self,
        tokenized: StepResult,
        chunks: list[Chunk],
        stage: str,
        mixture: MixtureConfig,
        shards: ShardsConfig,
        corpus_sha: str,
        config_sha: str,
    ) -> None:
        self.inputs = fingerprint(tokenized.output, corpus_sha)
        self.chunks = chunks
        self.token_units = str(tokenized.units[0].dir.parent) if tokenized.units else ""
        self.stage, self.mixture, self.shards, self.config_sha = stage, mixture, shards, config_sha

    def config(self) -> dict[str, Any]:
        return {"config_sha": self.config_sha}

    def fingerprint(self) -> str:
        return fingerprint(self.name, self.config())  # versions are inside config_sha (see TokenizeStep)

    def units(self) -> list[Unit]:
        return [Unit("plan", self.inputs)]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        prefixes = [Path(self.token_units) / c.key / c.key for c in self.chunks]
        docs = load_doc_table(self.chunks, prefixes, read_doc_meta(self.chunks))
        mix, sc = self.mixture, self.shards
        copies = mix.rehydrate.copies(read_cluster_sizes(self.chunks)) if mix.rehydrate is not None else None
        cells = bucket_cells(docs, self.chunks, mix.score_buckets)  # sources, or (source, score bucket) cells
        rows = plan_budget(cells.available(copies), mix)
        doc_idx, reps, realized = select_documents(cells.table, {r.cell: r.budget for r in rows}, mix.seed, copies)
        for r in rows:
            r.realized = realized.get(r.cell, 0)
        table = format_budget_table(self.stage, rows, sc.tokenizer, sc.seq_len, estimated=False)
        plan = plan_sequences(docs, doc_idx, reps, sc.seq_len, list(sc.buckets) or [Bucket("all")], mix.seed)
        save_plan(out.dir, docs, plan, [c.key for c in self.chunks], [budget_row(r) for r in rows], table)
        out.read(int(docs.lengths.size))
        out.stats.extra.update(num_sequences=plan.stats["num_sequences"])

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)


# --- shards: one unit per shard, reduce = manifest -----------------------------------------------------


def _strings(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes, pa.int32()))


def build_shard(
    plan: SequencePlan, docs: DocTable, first: int, stop: int, seq_len: int, eot_id: int, name: str
) -> tuple[np.ndarray, pa.Table]:
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
        "doc_id": docs.ids.take(pa.array(doc)).cast(pa.string()),
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


class ShardStep(Step):
    """One unit per shard: `<key>.bin`, `<key>.parquet` (placements), `shard.json` (its manifest record).

    Args:
        planned, tokenized: the finished plan and tokenize steps (a shard reads both).
        stage, shards: the stage name and its `[shards]` table.
        tokenizer: the tokenizer's `describe()`.
        corpus_sha, config_sha: the manifest's `inputs`.
    """

    name = SHARDS
    reduce_phase = True

    def __init__(
        self,
        planned: StepResult,
        tokenized: StepResult,
        stage: str,
        shards: ShardsConfig,
        tokenizer: dict[str, Any],
        corpus_sha: str,
        config_sha: str,
    ) -> None:
        plan = planned.unit("plan")
        self.plan_dir, self.plan_output = str(plan.dir), plan.output
        self.token_units = str(tokenized.units[0].dir.parent) if tokenized.units else ""
        self.inputs = fingerprint(planned.output, tokenized.output)
        self.num_sequences = int(json.loads((plan.dir / PLAN_JSON).read_text())["stats"]["num_sequences"])
        self.stage, self.tokenizer, self.corpus_sha, self.config_sha = stage, tokenizer, corpus_sha, config_sha
        self.seq_len, self.per, self.exports = shards.seq_len, shards.sequences_per_shard, list(shards.exports)

    def config(self) -> dict[str, Any]:
        return {"config_sha": self.config_sha, "corpus_sha": self.corpus_sha}

    def fingerprint(self) -> str:
        return fingerprint(self.name, self.config())

    def units(self) -> list[Unit]:
        n, per = self.num_sequences, self.per
        return [
            Unit(shard_key(j), self.inputs, {"first": j * per, "stop": min((j + 1) * per, n)})
            for j in range((n + per - 1) // per)
        ]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        docs, plan, _ = cached_plan(Path(self.plan_dir), Path(self.token_units), self.plan_output)
        first, stop = unit.payload["first"], unit.payload["stop"]
        name = f"{unit.key}.bin"
        arr, placements = build_shard(plan, docs, first, stop, self.seq_len, self.tokenizer["eot_id"], name)
        with ThreadPoolExecutor(1) as helper:  # the index is written beside the shard's write
            index = helper.submit(_write_index, out.dir / f"{unit.key}.parquet", placements)
            digest = write_shard(out.dir / name, arr)
            index_sha = index.result()
        atomic_write_json(
            out.dir / SHARD_RECORD,
            {
                "path": name,
                "num_tokens": int(arr.size),
                "num_sequences": stop - first,
                "sha256": digest,
                "index": f"placements/{unit.key}.parquet",
                "index_sha256": index_sha,
            },
        )
        out.stats.extra.update(num_tokens=int(arr.size), num_sequences=stop - first)

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)

    def reduce(self, results: list[UnitResult], out_dir: Path) -> dict[str, Any]:
        info = json.loads((Path(self.plan_dir) / PLAN_JSON).read_text())
        records = [json.loads((r.dir / SHARD_RECORD).read_text()) for r in results]
        shards = [{k: rec[k] for k in ("path", "num_tokens", "num_sequences", "sha256")} for rec in records]
        tokens = [r.dir / rec["path"] for r, rec in zip(results, records)]
        exports = write_export_indexes(out_dir, shards, tokens, self.tokenizer, self.exports)
        manifest = {
            "format": mf.FORMAT,
            "version": mf.VERSION,
            "stage": self.stage,
            "seq_len": self.seq_len,
            "dtype": "uint32",
            "tokenizer": self.tokenizer,
            "total_tokens": sum(s["num_tokens"] for s in shards),
            "num_sequences": self.num_sequences,
            "shards": shards,
            "inputs": {"corpus_sha256": self.corpus_sha, "config_sha256": self.config_sha},
            "index": {
                "path": "placements",
                "format": "parquet",
                "schema": [f.name for f in PLACEMENT_SCHEMA],
                "files": [{"path": rec["index"], "sha256": rec["index_sha256"]} for rec in records],
            },
            "exports": exports,
            "mixture": info["budget"],
            "packing": info["stats"],
        }
        mf.write_manifest(out_dir / "manifest.json", manifest)
        return {
            "num_shards": len(shards),
            "num_sequences": self.num_sequences,
            "total_tokens": manifest["total_tokens"],
        }


# --- the entry point --------------------------------------------------------------------------------------


def build_shards(
    layout: RunLayout,
    stage: str,
    mixture_cfg: dict,
    shards_cfg: dict,
    run: Callable[[Step], StepResult],
    dry_run: bool = False,
) -> dict[str, Any]:
    """Tokenize, mix, pack and publish a stage's shards and manifest from `layout.corpus_docs`.

    Args:
        layout: the run; reads `corpus_docs`, writes `steps/{tokenize,shard_plan,shards}/` and `shards/<stage>/`.
        stage: stage name (general, reasoning, long_context).
        mixture_cfg: the stage's `[mixture]` table (sharding/mixture.py).
        shards_cfg: the stage's `[shards]` table (ShardsConfig).
        run: runs one step to completion through the stage's executor (`lambda s: run_step(s, layout, ex)`).
        dry_run: print the token budget per source (estimated from bytes) and write nothing.

    Returns:
        stats: stage, tokenizer, seq_len, total_tokens, num_sequences, num_shards, budget rows, packing
        counts, manifest path, table (the budget table), `skipped` (the published manifest was built from
        these inputs and every file verified), shards_written, tokenize counts, `damaged` (units that failed
        their hash check and were rebuilt), `warnings` (why the manifest holds 0 shards, when it does; also
        logged). The stage's funnel.json keeps these under `shards`.
    """
    from sharding.tokenizer import load_tokenizer

    t0 = time.perf_counter()
    mix = MixtureConfig.from_dict(mixture_cfg)
    sc = ShardsConfig.from_dict(shards_cfg)
    tok = load_tokenizer(sc.tokenizer)
    chunks, corpus_sha = list_chunks(layout.corpus_docs, f"{tok.name}:{tok.vocab_sha256}")
    config_sha = fingerprint(stage, mixture_cfg, sc.output_config(), tok.describe(), mf.VERSION, TOKENIZE_VERSION)

    if dry_run:
        return _dry_run(stage, chunks, tok, mix, sc)

    manifest_path = layout.manifest(stage)
    t_check = time.perf_counter()
    published = verified_manifest(manifest_path, corpus_sha, config_sha)
    if published is not None:
        log.info("shards for stage %s are up to date and verified: %s", stage, manifest_path)
        return {
            **build_summary(published, manifest_path),
            "skipped": True,
            "shards_written": 0,
            "verify_seconds": round(time.perf_counter() - t_check, 3),
        }

    tokenize_step = TokenizeStep(chunks, tok.describe(), sc.num_proc)
    damaged = {TOKENIZE: discard_damaged(tokenize_step, layout)}
    t_tok = time.perf_counter()
    tokenized = run(tokenize_step)
    t_tok = time.perf_counter() - t_tok
    planned = _run_checked(PlanStep(tokenized, chunks, stage, mix, sc, corpus_sha, config_sha), layout, run, damaged)
    print(json.loads((planned.unit("plan").dir / PLAN_JSON).read_text())["table"])
    shard_step = ShardStep(planned, tokenized, stage, sc, tok.describe(), corpus_sha, config_sha)
    sharded = _run_checked(shard_step, layout, run, damaged)
    manifest_path = publish_shards(layout, stage, sharded, list(sc.exports))
    if not sc.keep_token_cache:
        shutil.rmtree(layout.step(TOKENIZE), ignore_errors=True)
    ts = tokenized.stats
    summary = build_summary(mf.read_manifest(manifest_path), manifest_path)
    for warning in summary["warnings"]:
        log.warning("%s", warning)
    return {
        **summary,
        "skipped": False,
        "shards_written": sharded.units_run,
        "damaged": {k: v for k, v in damaged.items() if v},
        "tokenize": {
            "chunks": len(chunks),
            "chunks_tokenized": tokenized.units_run,
            "docs": ts.docs_out,
            "tokens": int(ts.extra.get("tokens", 0)),
            "bytes": int(ts.extra.get("bytes", 0)),
            "seconds": round(t_tok, 3),
        },
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _dry_run(stage: str, chunks: list[Chunk], tok: Any, mix: MixtureConfig, sc: ShardsConfig) -> dict[str, Any]:
    """Print the token budget per source, estimated from the chunks' bytes, and return it; nothing is written."""
    rows = plan_budget(estimate_available(chunks, tok, mix.rehydrate, mix.score_buckets), mix)
    table = format_budget_table(stage, rows, tok.name, sc.seq_len, estimated=True)
    print(table)
    return {
        "stage": stage,
        "dry_run": True,
        "budget": [budget_row(r) for r in rows],
        "table": table,
        "budget_tokens": sum(r.budget for r in rows),
    }


def _run_checked(
    step: Step, layout: RunLayout, run: Callable[[Step], StepResult], damaged: dict[str, list[str]]
) -> StepResult:
    """Run `step` after discarding its units whose files fail their hash check (listed in `damaged[step.name]`)."""
    damaged[step.name] = discard_damaged(step, layout)
    return run(step)
