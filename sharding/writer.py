"""Atomic shard files and a progress journal, so an interrupted build resumes at shard granularity.

A shard is written to `.<name>.tmp-<pid>`, fsynced and renamed; its placements Parquet the same way; then
one JSON line (path, counts, sha256, the plan's fingerprint) is appended to `.progress.jsonl` and fsynced.
On resume, a shard is skipped only when its journal line has the current plan's fingerprint and the file
on disk still has that size and sha256; anything else under a shard name is rewritten. So no shard is
half-written (the rename is atomic) or duplicated (names are fixed by the plan: `shard-<index>.bin`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import file_sha256

JOURNAL = ".progress.jsonl"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.bin"


def write_shard(path: Path, tokens: np.ndarray) -> str:
    """Write little-endian uint32 `tokens` to `path` atomically; return the sha256 of the bytes.

    The hash runs in a helper thread while this one writes and fsyncs (hashlib and file I/O both release
    the GIL), so it costs no wall time beyond the write.
    """
    from concurrent.futures import ThreadPoolExecutor

    arr = np.ascontiguousarray(tokens, dtype="<u4")
    data = memoryview(arr).cast("B")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with ThreadPoolExecutor(1) as ex:
        digest = ex.submit(lambda: hashlib.sha256(data).hexdigest())
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return digest.result()


class Journal:
    """Completed shards of one plan (fingerprint), appended line by line."""

    def __init__(self, stage_dir: Path, plan_fingerprint: str) -> None:
        self.path = stage_dir / JOURNAL
        self.plan = plan_fingerprint
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: that shard is simply redone
                    continue
                if rec.get("plan") == plan_fingerprint:
                    self.done[rec["path"]] = rec

    def completed(self, stage_dir: Path, name: str) -> dict[str, Any] | None:
        """The journal record of shard `name` if its file is intact, else None."""
        rec = self.done.get(name)
        if rec is None:
            return None
        path = stage_dir / name
        if not path.is_file() or path.stat().st_size != rec["num_tokens"] * 4 or file_sha256(path) != rec["sha256"]:
            return None
        return rec

    def add(self, rec: dict[str, Any]) -> None:
        rec = {**rec, "plan": self.plan}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[rec["path"]] = rec
