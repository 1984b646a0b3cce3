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

Reuse only what verifies (issue 12): a published shard is the unit's own file (a hard link), so a byte changed
under `shards/<stage>/` is a byte changed in the unit. Before anything is reused, the published manifest is
re-hashed against its sha256s; when that fails, every unit this run would reuse is re-hashed against its
marker's output hash and redone if it differs, then the shards are published again.

Layout of `shards/<stage>/`::

    manifest.json                     # the trainer handoff (sharding/manifest.py)
    shard-00000.bin ...               # num_sequences * seq_len little-endian uint32 ids each
    placements/shard-00000.parquet    # where each document's ids landed (PLACEMENT_SCHEMA)
    exports/datatrove/*.ds*, exports/megatron/*.bin|idx
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core.config_types import check_table, type_hints_of
from core.io import atomic_write_json, dir_fingerprint, file_sha256, fingerprint, write_table
from core.paths import SUCCESS_MARKER
from pipeline.layout import RunLayout, temp_suffix
from pipeline.runner import StepResult
from pipeline.step import (
    Step,
    Unit,
    UnitResult,
    UnitWriter,
    commit_dir,
    read_marker,
    remove_stale_temps,
    unit_fingerprint,
)
from sharding import manifest as mf
from sharding.exports import EXPORTS, link_export_tokens, write_export_indexes
from sharding.mixture import MixtureConfig, SourceBudget, format_budget_table, plan_budget
from sharding.pack import (
    TOKENIZE_VERSION,
    Bucket,
    Chunk,
    DocTable,
    SequencePlan,
    Stream,
    available_by_source,
    list_chunks,
    load_doc_table,
    plan_sequences,
    read_doc_meta,
    select_documents,
    shard_pieces,
    tokenize_chunk,
)
from sharding.writer import shard_key, write_shard

log = logging.getLogger(__name__)

TOKENIZE, PLAN, SHARDS = "tokenize", "shard_plan", "shards"
PLAN_JSON = "plan.json"
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
_SHARD_KEYS = {"tokenizer", "seq_len", "shard_tokens", "num_proc", "exports", "buckets", "keep_token_cache"}


@dataclass(frozen=True)
class ShardsConfig:
    """The `[shards]` table of a stage config.

    Args:
        tokenizer: a spec in tokenizers/ ("o200k_harmony", "qwen").
        seq_len: tokens per packed sequence (Qwen3: 4096 in S1/S2, 32768 in S3).
        shard_tokens: target tokens per shard file, rounded down to whole sequences (at least one).
        num_proc: tokenizer threads per tokenize unit, as tiktoken encodes without the GIL (output does not
            depend on it).
        exports: any of "datatrove", "megatron".
        buckets: document-length buckets with the fraction of sequences each supplies; none = one bucket.
        keep_token_cache: keep the tokenize units after success (a rerun with a new mixture skips tokenizing).
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
        unknown = [e for e in self.exports if e not in EXPORTS]
        if unknown:
            raise ValueError(f"[shards] exports = {list(self.exports)!r}: unknown {unknown}; known: {list(EXPORTS)}")
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
        check_table("[shards]", cfg, type_hints_of(cls))  # `seq_len = "1024"`: this line, not a '<' on a str
        buckets = tuple(Bucket(**b) for b in cfg.pop("buckets", []))
        exports = tuple(cfg.pop("exports", ("datatrove", "megatron")))
        return cls(**cfg, buckets=buckets, exports=exports)

    def output_config(self) -> dict[str, Any]:
        """What decides the output bytes (num_proc and keep_token_cache do not)."""
        return {"tokenizer": self.tokenizer, "seq_len": self.seq_len, "sequences_per_shard": self.sequences_per_shard,
                "exports": list(self.exports), "buckets": [b.__dict__ for b in self.buckets]}  # fmt: skip


@dataclass(frozen=True)
class ShardsLayout(RunLayout):
    """The layout of a shard build outside a stage run (`python -m sharding.build --corpus C --out O`): the
    corpus is `docs`, the shards go to `out/<stage>/`, the work units under `root`."""

    docs: Path = Path("corpus/docs")
    out: Path = Path("shards")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "docs", Path(self.docs).resolve())
        object.__setattr__(self, "out", Path(self.out).resolve())

    @property
    def corpus_docs(self) -> Path:
        return self.docs

    @property
    def shards_root(self) -> Path:
        return self.out


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
            units.setdefault(c.key, Unit(c.key, c.key, {"path": str(c.path), "row_group": c.row_group,
                                                        "num_docs": c.num_docs}))  # fmt: skip
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


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr))


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # an empty array cannot be memory-mapped
        return np.load(path)


def save_plan(out: Path, docs: DocTable, plan: SequencePlan, chunk_keys: list[str], budget: list[dict[str, Any]],
              table: str) -> None:  # fmt: skip
    """The document table and the sequence plan as `.npy` arrays and `plan.json`."""
    ids = docs.ids.cast(pa.large_string())  # int64 offsets: a large corpus's ids exceed 2 GiB
    offsets, data = np.zeros(1, np.int64), np.zeros(0, np.uint8)
    if len(ids):
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64)[ids.offset : ids.offset + len(ids) + 1]
        if ids.buffers()[2] is not None:
            data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
        offsets = offsets - offsets[0]
    _save(out / "doc_id_offsets.npy", offsets)
    _save(out / "doc_id_data.npy", data)
    for name in ("source", "domain", "lengths", "chunk", "offset"):
        _save(out / f"doc_{name}.npy", getattr(docs, name))
    _save(out / "order.npy", plan.order)
    for b, s in enumerate(plan.streams):
        for name in ("docs", "repeats", "ends"):
            _save(out / f"stream{b:03d}_{name}.npy", getattr(s, name))
    atomic_write_json(out / PLAN_JSON, {
        "chunks": chunk_keys, "source_names": docs.source_names, "domain_names": docs.domain_names,
        "streams": [{"bucket": s.bucket, "num_sequences": s.num_sequences} for s in plan.streams],
        "stats": plan.stats, "budget": budget, "table": table})  # fmt: skip


def load_plan(plan_dir: Path, token_units: Path) -> tuple[DocTable, SequencePlan, dict[str, Any]]:
    """What `save_plan` wrote, memory-mapped; chunk files are `<token_units>/<key>/<key>.tok`."""
    info = json.loads((plan_dir / PLAN_JSON).read_text())
    offsets, data = _load(plan_dir / "doc_id_offsets.npy"), _load(plan_dir / "doc_id_data.npy")
    n = offsets.size - 1
    ids = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    a = {name: _load(plan_dir / f"doc_{name}.npy") for name in ("source", "domain", "lengths", "chunk", "offset")}
    files = [token_units / key / f"{key}.tok" for key in info["chunks"]]
    docs = DocTable(ids, a["source"], a["domain"], info["source_names"], info["domain_names"], a["lengths"],
                    a["chunk"], a["offset"], files)  # fmt: skip
    streams = [Stream(s["bucket"], *(_load(plan_dir / f"stream{b:03d}_{k}.npy") for k in ("docs", "repeats", "ends")),
                      s["num_sequences"]) for b, s in enumerate(info["streams"])]  # fmt: skip
    return docs, SequencePlan(streams, _load(plan_dir / "order.npy"), info["stats"]), info


_PLANS: dict[str, tuple[str, tuple[DocTable, SequencePlan, dict[str, Any]]]] = {}


def _cached_plan(plan_dir: Path, token_units: Path, output: str) -> tuple[DocTable, SequencePlan, dict[str, Any]]:
    """The plan, loaded once per process (a worker runs many shard units of one plan)."""
    st = (plan_dir / PLAN_JSON).stat()
    version = f"{output}:{st.st_ino}:{st.st_mtime_ns}"  # a rebuilt plan folder is new files, new memory maps
    hit = _PLANS.get(str(plan_dir))
    if hit is None or hit[0] != version:
        _PLANS.clear()
        hit = _PLANS[str(plan_dir)] = (version, load_plan(plan_dir, token_units))
    return hit[1]


class PlanStep(Step):
    """Budget, selection and packing plan over the tokenized corpus: one unit, `plan`.

    Args:
        tokenized: the finished tokenize step.
        chunks: the corpus chunks, in corpus order.
        stage, mixture, shards: the stage name, its `[mixture]` (validated) and `[shards]` tables.
        corpus_sha, config_sha: the manifest's `inputs` (config_sha covers mixture, shards, tokenizer, versions).
    """

    name = PLAN

    def __init__(self, tokenized: StepResult, chunks: list[Chunk], stage: str, mixture: MixtureConfig,
                 shards: ShardsConfig, corpus_sha: str, config_sha: str) -> None:  # fmt: skip
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
        rows = plan_budget(available_by_source(docs), mix)
        doc_idx, reps, realized = select_documents(docs, {r.source: r.budget for r in rows}, mix.seed)
        for r in rows:
            r.realized = realized.get(r.source, 0)
        table = format_budget_table(self.stage, rows, sc.tokenizer, sc.seq_len, estimated=False)
        plan = plan_sequences(docs, doc_idx, reps, sc.seq_len, list(sc.buckets) or [Bucket("all")], mix.seed)
        save_plan(out.dir, docs, plan, [c.key for c in self.chunks], [_row(r) for r in rows], table)
        out.read(int(docs.lengths.size))
        out.stats.extra.update(num_sequences=plan.stats["num_sequences"])

    def writer(self, directory: Path) -> UnitWriter:
        return UnitWriter(directory, documents=False)


# --- shards: one unit per shard, reduce = manifest -----------------------------------------------------


def _strings(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes, pa.int32()))


def build_shard(plan: SequencePlan, docs: DocTable, first: int, stop: int, seq_len: int, eot_id: int,
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

    def __init__(self, planned: StepResult, tokenized: StepResult, stage: str, shards: ShardsConfig,
                 tokenizer: dict[str, Any], corpus_sha: str, config_sha: str) -> None:  # fmt: skip
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
        return [Unit(shard_key(j), self.inputs, {"first": j * per, "stop": min((j + 1) * per, n)})
                for j in range((n + per - 1) // per)]  # fmt: skip

    def run(self, unit: Unit, out: UnitWriter) -> None:
        docs, plan, _ = _cached_plan(Path(self.plan_dir), Path(self.token_units), self.plan_output)
        first, stop = unit.payload["first"], unit.payload["stop"]
        name = f"{unit.key}.bin"
        arr, placements = build_shard(plan, docs, first, stop, self.seq_len, self.tokenizer["eot_id"], name)
        with ThreadPoolExecutor(1) as helper:  # the index is written beside the shard's write
            index = helper.submit(_write_index, out.dir / f"{unit.key}.parquet", placements)
            digest = write_shard(out.dir / name, arr)
            index_sha = index.result()
        atomic_write_json(out.dir / SHARD_RECORD, {"path": name, "num_tokens": int(arr.size),
                                                   "num_sequences": stop - first, "sha256": digest,
                                                   "index": f"placements/{unit.key}.parquet",
                                                   "index_sha256": index_sha})  # fmt: skip
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
            "index": {"path": "placements", "format": "parquet", "schema": [f.name for f in PLACEMENT_SCHEMA],
                      "files": [{"path": rec["index"], "sha256": rec["index_sha256"]} for rec in records]},  # fmt: skip
            "exports": exports,
            "mixture": info["budget"],
            "packing": info["stats"],
        }
        mf.write_manifest(out_dir / "manifest.json", manifest)
        return {"num_shards": len(shards), "num_sequences": self.num_sequences, "total_tokens": manifest["total_tokens"]}


def publish_shards(layout: RunLayout, stage: str, sharded: StepResult, exports: list[str]) -> Path:
    """Make `shards/<stage>/` the shard units' files plus the reduce's (hard links), built beside it and swapped
    in: a kill leaves the old complete folder or the new one. Returns the manifest's path."""
    assert sharded.reduce_dir is not None, "the shards step has a reduce"
    final = layout.shards(stage)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final.parent, final.name)
    tmp = final.with_name(final.name + temp_suffix())
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "placements").mkdir(parents=True)
    for r in sharded.units:
        os.link(r.dir / f"{r.key}.bin", tmp / f"{r.key}.bin")
        os.link(r.dir / f"{r.key}.parquet", tmp / "placements" / f"{r.key}.parquet")
    for src in sorted(p for p in sharded.reduce_dir.rglob("*") if p.is_file() and p.name != SUCCESS_MARKER):
        dst = tmp / src.relative_to(sharded.reduce_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)
    link_export_tokens(tmp, mf.read_manifest(tmp / "manifest.json")["shards"], exports)
    commit_dir(tmp, final)
    return final / "manifest.json"


# --- reuse only what verifies -----------------------------------------------------------------------------


def discard_damaged(step: Step, layout: RunLayout, threads: int = 4) -> list[str]:
    """Delete the units (and reduce) of `step` that this run would reuse but whose files no longer hash to
    their marker's output, so that `run_step` redoes them; return their keys.

    A marker only says the unit was complete once; its files are hard-linked into published folders, where
    anything may edit them. Hashing costs a read of the files (see BENCHMARKS.md, issue 12).
    """
    step_fp = step.fingerprint()
    todo: list[tuple[Path, str | None]] = []
    for u in step.units():
        d = layout.unit(step.name, u.key)
        m = read_marker(d)
        if m is not None and m.get("fingerprint") == unit_fingerprint(step_fp, u):
            todo.append((d, m.get("output")))
    if step.reduce_phase:
        m = read_marker(layout.reduce(step.name), SUCCESS_MARKER)
        if m is not None:
            todo.append((layout.reduce(step.name), m.get("output")))
    with ThreadPoolExecutor(max(1, min(threads, len(todo)))) as pool:  # hashlib releases the GIL
        got = list(pool.map(lambda t: dir_fingerprint(t[0]), todo))
    bad = [d for (d, want), have in zip(todo, got) if have != want]
    for d in bad:
        log.warning("step %s: %s no longer matches its completion marker; it is rebuilt", step.name, d)
        shutil.rmtree(d)
    return [d.name for d in bad]


def verified_manifest(path: Path, corpus_sha: str, config_sha: str) -> dict[str, Any] | None:
    """The published manifest when it was built from these inputs and every file it lists still hashes to its
    sha256; else None (and why, in the log)."""
    try:
        m = mf.read_manifest(path)
    except mf.ManifestError:
        return None
    if m["inputs"] != {"corpus_sha256": corpus_sha, "config_sha256": config_sha}:
        return None
    problems = mf.verify_manifest(path)
    if problems:
        log.warning("%s: %d file(s) do not verify (%s); rebuilding", path, len(problems), problems[0])
        return None
    return m


# --- the entry point --------------------------------------------------------------------------------------


def _estimate_available(chunks: list[Chunk], tok: Any, sample_bytes: int = 1 << 20) -> dict[tuple[str, str], tuple[int, int]]:
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


def _row(r: SourceBudget) -> dict[str, Any]:
    return {"source": r.source, "domain": r.domain, "docs": r.docs, "available_tokens": r.available,
            "share": round(r.share, 6), "budget_tokens": r.budget, "epochs": round(r.epochs, 4),
            "max_repeats": r.cap, "selected_tokens": r.realized}  # fmt: skip


def _table(m: dict[str, Any]) -> str:
    """The budget table of a published manifest (its `mixture` rows)."""
    rows = [SourceBudget(r["source"], r["domain"], r["docs"], r["available_tokens"], r["share"], r["budget_tokens"],
                         r["max_repeats"], r["selected_tokens"]) for r in m.get("mixture", [])]  # fmt: skip
    return format_budget_table(m["stage"], rows, m["tokenizer"]["name"], m["seq_len"], estimated=False)


def no_shards_warning(m: dict[str, Any]) -> str | None:
    """Why a manifest holds no shard (the trainer has nothing to read), or None when it holds some.

    Only full sequences of `seq_len` tokens are packed (a trailing partial one is dropped, sharding/pack.py), so a
    run that keeps a few short documents writes a valid manifest with 0 shards: said out loud, never silently.
    """
    if m["shards"]:
        return None
    packing = m.get("packing", {})
    docs, tokens = packing.get("docs_selected", 0), packing.get("tokens_selected", 0)
    outside = packing.get("tokens_outside_buckets", 0)
    if docs == 0:
        why = "the mixture selected no document (the corpus is empty, or every source has weight 0)"
    elif outside:
        why = (
            f"the mixture selected {docs:,} document(s) of {tokens:,} tokens (EOT included), {outside:,} of them "
            f"outside every length bucket, and no bucket fills one sequence of seq_len={m['seq_len']:,} tokens"
        )
    else:
        why = (
            f"the mixture selected {docs:,} document(s) of {tokens:,} tokens (EOT included), fewer than one "
            f"sequence of seq_len={m['seq_len']:,} tokens"
        )
    return f"stage {m['stage']}: the manifest holds 0 shards: {why}; add input or lower [shards] seq_len"


def _summary(m: dict[str, Any], path: Path) -> dict[str, Any]:
    warning = no_shards_warning(m)
    return {"stage": m["stage"], "manifest": str(path), "tokenizer": m["tokenizer"]["name"], "seq_len": m["seq_len"],
            "total_tokens": m["total_tokens"], "num_sequences": m["num_sequences"], "num_shards": len(m["shards"]),
            "budget": m.get("mixture", []), "packing": m.get("packing", {}), "table": _table(m),
            "warnings": [warning] if warning else []}  # fmt: skip


def build_shards(layout: RunLayout, stage: str, mixture_cfg: dict, shards_cfg: dict,
                 run: Callable[[Step], StepResult], dry_run: bool = False) -> dict[str, Any]:  # fmt: skip
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
        rows = plan_budget(_estimate_available(chunks, tok), mix)
        table = format_budget_table(stage, rows, tok.name, sc.seq_len, estimated=True)
        print(table)
        return {"stage": stage, "dry_run": True, "budget": [_row(r) for r in rows], "table": table,
                "budget_tokens": sum(r.budget for r in rows)}  # fmt: skip

    manifest_path = layout.manifest(stage)
    t_check = time.perf_counter()
    published = verified_manifest(manifest_path, corpus_sha, config_sha)
    if published is not None:
        log.info("shards for stage %s are up to date and verified: %s", stage, manifest_path)
        return {**_summary(published, manifest_path), "skipped": True, "shards_written": 0,
                "verify_seconds": round(time.perf_counter() - t_check, 3)}  # fmt: skip

    damaged: dict[str, list[str]] = {}
    tokenize_step = TokenizeStep(chunks, tok.describe(), sc.num_proc)
    damaged[TOKENIZE] = discard_damaged(tokenize_step, layout)
    t_tok = time.perf_counter()
    tokenized = run(tokenize_step)
    t_tok = time.perf_counter() - t_tok
    plan_step = PlanStep(tokenized, chunks, stage, mix, sc, corpus_sha, config_sha)
    damaged[PLAN] = discard_damaged(plan_step, layout)
    planned = run(plan_step)
    table = json.loads((planned.unit("plan").dir / PLAN_JSON).read_text())["table"]
    print(table)
    shard_step = ShardStep(planned, tokenized, stage, sc, tok.describe(), corpus_sha, config_sha)
    damaged[SHARDS] = discard_damaged(shard_step, layout)
    sharded = run(shard_step)
    manifest_path = publish_shards(layout, stage, sharded, list(sc.exports))
    if not sc.keep_token_cache:
        shutil.rmtree(layout.step(TOKENIZE), ignore_errors=True)
    ts = tokenized.stats
    summary = _summary(mf.read_manifest(manifest_path), manifest_path)
    for warning in summary["warnings"]:
        log.warning("%s", warning)
    return {**summary, "skipped": False,
            "shards_written": sharded.units_run, "damaged": {k: v for k, v in damaged.items() if v},
            "tokenize": {"chunks": len(chunks), "chunks_tokenized": tokenized.units_run, "docs": ts.docs_out,
                         "tokens": int(ts.extra.get("tokens", 0)), "bytes": int(ts.extra.get("bytes", 0)),
                         "seconds": round(t_tok, 3)},
            "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip
