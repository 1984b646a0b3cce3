"""Atomic shard files.

A shard is written to `.<name>.tmp-<pid>`, fsynced and renamed, and its sha256 is computed while it is written.
Resume is per work unit (`sharding/steps.py`): a shard unit's folder is renamed into place after its
completion marker is written, and a unit is reused only while its files hash to that marker's output.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def shard_key(index: int) -> str:
    """The shard unit's key and its file's stem: `shard-00000`."""
    return f"shard-{index:05d}"


def shard_name(index: int) -> str:
    return f"{shard_key(index)}.bin"


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
