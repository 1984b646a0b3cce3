"""Files derived from shipped assets, cached across runs under `$CORPUSFORGE_CACHE/<kind>` (default
`~/.cache/corpusforge/<kind>`).

A cached file is named by the sha256 of what it was derived from, so a changed input never meets a stale file;
it is written through a unique temporary file and a rename, so a concurrent reader (another worker, another run)
never sees half of it. A cache that cannot be written (a read-only home) is a warning, not a failure.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir(kind: str) -> Path:
    """`$CORPUSFORGE_CACHE/<kind>`, default `~/.cache/corpusforge/<kind>` (not created here)."""
    root = os.environ.get("CORPUSFORGE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "corpusforge") / kind


def write_cached(path: Path, data: bytes) -> bool:
    """Write `data` to `path` through a unique temporary file and a rename; False (and a warning) when the
    cache folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users of a shared cache folder
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:
        log.warning("not cached at %s: %s", path, e)
        return False
    return True
