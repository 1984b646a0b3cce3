"""Run a step once: skip it when its completion marker matches, else build it atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.io import StepOutput, is_complete, read_marker

REPO_ROOT = Path(__file__).resolve().parents[1]
_CODE_PACKAGES = ("schemas", "ingest", "filters", "dedup", "pipeline")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the data-path source code: editing a filter invalidates the steps it could change."""
    h = hashlib.sha256()
    for pkg in _CODE_PACKAGES:
        for path in sorted((REPO_ROOT / pkg).rglob("*.py")):
            h.update(str(path.relative_to(REPO_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_step(step_dir: Path, step_fingerprint: str, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn(tmp_dir)` unless `step_dir` already holds a run with the same fingerprint.

    Returns:
        the step's marker: {"fingerprint", "output" (hash of its files), "stats", "skipped"}.
    """
    if is_complete(step_dir, step_fingerprint):
        marker = read_marker(step_dir)
        assert marker is not None
        return {**marker, "skipped": True}
    out = StepOutput(step_dir, step_fingerprint)
    with out as tmp_dir:
        out.stats = fn(tmp_dir)
    marker = read_marker(step_dir)
    assert marker is not None, f"step {step_dir} finished without a marker"
    return {**marker, "skipped": False}
