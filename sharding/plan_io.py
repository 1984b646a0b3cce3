"""The shard plan on disk: the document table and the packed sequence plan as `.npy` arrays and `plan.json`,
written by the shard_plan unit and memory-mapped by every shard unit (loaded once per process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core.io import atomic_write_json
from sharding.doc_table import DocTable
from sharding.pack import SequencePlan, Stream

PLAN_JSON = "plan.json"


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr))


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # an empty array cannot be memory-mapped
        return np.load(path)


def save_plan(
    out: Path, docs: DocTable, plan: SequencePlan, chunk_keys: list[str], budget: list[dict[str, Any]], table: str
) -> None:
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
    atomic_write_json(
        out / PLAN_JSON,
        {
            "chunks": chunk_keys,
            "source_names": docs.source_names,
            "domain_names": docs.domain_names,
            "streams": [{"bucket": s.bucket, "num_sequences": s.num_sequences} for s in plan.streams],
            "stats": plan.stats,
            "budget": budget,
            "table": table,
        },
    )


def load_plan(plan_dir: Path, token_units: Path) -> tuple[DocTable, SequencePlan, dict[str, Any]]:
    """What `save_plan` wrote, memory-mapped; chunk files are `<token_units>/<key>/<key>.tok`."""
    info = json.loads((plan_dir / PLAN_JSON).read_text())
    offsets, data = _load(plan_dir / "doc_id_offsets.npy"), _load(plan_dir / "doc_id_data.npy")
    n = offsets.size - 1
    ids = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    a = {name: _load(plan_dir / f"doc_{name}.npy") for name in ("source", "domain", "lengths", "chunk", "offset")}
    files = [token_units / key / f"{key}.tok" for key in info["chunks"]]
    docs = DocTable(
        ids,
        a["source"],
        a["domain"],
        info["source_names"],
        info["domain_names"],
        a["lengths"],
        a["chunk"],
        a["offset"],
        files,
    )
    streams = [
        Stream(
            s["bucket"],
            *(_load(plan_dir / f"stream{b:03d}_{k}.npy") for k in ("docs", "repeats", "ends")),
            s["num_sequences"],
        )
        for b, s in enumerate(info["streams"])
    ]
    return docs, SequencePlan(streams, _load(plan_dir / "order.npy"), info["stats"]), info


_PLANS: dict[str, tuple[str, tuple[DocTable, SequencePlan, dict[str, Any]]]] = {}


def cached_plan(plan_dir: Path, token_units: Path, output: str) -> tuple[DocTable, SequencePlan, dict[str, Any]]:
    """The plan, loaded once per process (a worker runs many shard units of one plan)."""
    st = (plan_dir / PLAN_JSON).stat()
    version = f"{output}:{st.st_ino}:{st.st_mtime_ns}"  # a rebuilt plan folder is new files, new memory maps
    hit = _PLANS.get(str(plan_dir))
    if hit is None or hit[0] != version:
        _PLANS.clear()
        hit = _PLANS[str(plan_dir)] = (version, load_plan(plan_dir, token_units))
    return hit[1]
