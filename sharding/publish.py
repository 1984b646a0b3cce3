"""`shards/<stage>/`: publishing it from the shard units, and reusing only what verifies (issue 12).

A published shard is the unit's own file (a hard link), so a byte changed under `shards/<stage>/` is a byte changed
in the unit. Before anything is reused, the published manifest is re-hashed against its sha256s; when that fails,
every unit this run would reuse is re-hashed against its marker's output hash and redone if it differs, then the
shards are published again.

Layout of `shards/<stage>/`::

    manifest.json                     # the trainer handoff (sharding/manifest.py)
    shard-00000.bin ...               # num_sequences * seq_len little-endian uint32 ids each
    placements/shard-00000.parquet    # where each document's ids landed (PLACEMENT_SCHEMA)
    exports/datatrove/*.ds*, exports/megatron/*.bin|idx
"""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.io import dir_fingerprint
from core.paths import SUCCESS_MARKER
from pipeline.layout import RunLayout, temp_suffix
from pipeline.runner import StepResult
from pipeline.step import Step, commit_dir, read_marker, remove_stale_temps, unit_fingerprint
from sharding import manifest as mf
from sharding.exports import link_export_tokens

# The shard build's logger (sharding/steps.py's): a warning reads as it did before this module was cut out.
log = logging.getLogger("sharding.steps")


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
