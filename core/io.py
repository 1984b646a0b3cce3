"""Atomic Parquet I/O, fingerprints and the run lock.

Every file is written to a temporary name in the same directory and renamed when complete, so a
killed run never leaves a half-written file under its final name. (Work units and their completion markers
are `pipeline/step.py`'s.)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.paths import STEP_MARKER, SUCCESS_MARKER
from schemas import validate_batch

ROWS_PER_GROUP = 10_000


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def write_table(path: Path, table: pa.Table, schema: pa.Schema) -> None:
    """Validate and write one Parquet file atomically (zstd, deterministic row groups)."""
    validate_batch(table, schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROWS_PER_GROUP)
    os.replace(tmp, path)


MAX_BUFFER_BYTES = 64 << 20  # text held by one sink before it writes a part: memory stays flat for any doc size


def _row_bytes(row: dict[str, Any]) -> int:
    """Approximate size of a row: its string values (text dominates) plus a fixed overhead."""
    return 64 + sum(len(v) for v in row.values() if isinstance(v, str))


class ParquetSink:
    """Streams rows into numbered Parquet parts of at most `rows_per_file` rows or about `max_bytes` of text.

    Files are named `part-00000.parquet`, ... in write order, so the same input order gives the
    same files. The byte bound keeps memory flat whatever the document sizes (a 100k-row buffer of 7 MB
    documents would be 700 GB).
    """

    def __init__(
        self, directory: Path, schema: pa.Schema, rows_per_file: int = 100_000, max_bytes: int = MAX_BUFFER_BYTES
    ) -> None:
        self.directory = directory
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.max_bytes = max_bytes
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self._parts = 0
        self.rows_written = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self._bytes += _row_bytes(row)
        if len(self._rows) >= self.rows_per_file or self._bytes >= self.max_bytes:
            self._flush()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def _flush(self) -> None:
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        write_table(self.directory / f"part-{self._parts:05d}.parquet", table, self.schema)
        self.rows_written += len(self._rows)
        self._parts += 1
        self._rows = []
        self._bytes = 0

    def close(self) -> None:
        """Flush the last part; an empty sink still writes one empty file so readers see the schema."""
        if self._rows or self._parts == 0:
            self._flush()


def read_rows(directory: Path, batch_size: int = 2_000) -> Iterator[dict[str, Any]]:
    """Stream rows from every Parquet file under `directory`, in sorted path order.

    A step always writes at least one (maybe empty) file per table, so a missing or empty directory is
    damage, not an empty table: it raises instead of reading as zero rows.
    """
    paths = sorted(directory.rglob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no Parquet files under {directory}: the step output is damaged; delete it and rerun")
    for path in paths:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()


def fingerprint(*parts: Any) -> str:
    """Hash of JSON-serialisable parts (config dicts, input fingerprints, code version)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


MARKERS = (SUCCESS_MARKER, STEP_MARKER)


def dir_fingerprint(directory: Path) -> str:
    """Hash of the names and contents of every file in a step's or unit's output directory (markers aside)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in MARKERS):
        h.update(str(path.relative_to(directory)).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def pid_alive(pid: str) -> bool:
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run directory for the whole run: two runs never write into one."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another corpusforge run is using {run_dir}; wait for it to finish or pass another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
