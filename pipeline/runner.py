"""Run a step's units through an executor, then its reduce, with per-unit resume. No Prefect here.

`run_step(step, layout, executor)` is the whole of a step's orchestration:

1. list the step's units (deterministic, in global input order) and their fingerprints;
2. hand the units without a matching marker to `map_units` (by default the executor; `flows/` passes a
   function that makes each unit a mapped Prefect task);
3. run `reduce` once when the step has one and its inputs changed;
4. delete unit folders that no longer belong to the step, and write `steps/<name>/_STEP.json` with the units in
   order and the merged stats.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.io import atomic_write_json, dir_fingerprint, fingerprint
from core.paths import SUCCESS_MARKER as REDUCE_MARKER
from pipeline.executors import Executor, InlineExecutor
from pipeline.layout import RunLayout, temp_suffix
from pipeline.step import (
    Step,
    StepStats,
    Unit,
    UnitResult,
    commit_dir,
    finished,
    read_marker,
    remove_stale_temps,
    run_unit,
    unit_fingerprint,
)

log = logging.getLogger(__name__)

MapUnits = Callable[[Step, list[Unit], list[Path], str], list[UnitResult]]


@dataclass
class StepResult:
    """A finished step: its units in order, merged stats, the reduce output and how much was redone."""

    name: str
    fingerprint: str
    units: list[UnitResult]
    stats: StepStats
    reduce_dir: Path | None = None
    reduce_stats: dict[str, Any] = field(default_factory=dict)
    units_run: int = 0
    reduce_run: bool = False
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Hash of every unit's output (and the reduce's): what a downstream step's fingerprint includes."""
        parts = [(u.key, u.output) for u in self.units]
        if self.reduce_dir is not None:
            parts.append(("reduce", (read_marker(self.reduce_dir, REDUCE_MARKER) or {}).get("output", "")))
        return fingerprint(parts)

    @property
    def skipped(self) -> bool:
        return self.units_run == 0 and not self.reduce_run

    def unit(self, key: str) -> UnitResult:
        for u in self.units:
            if u.key == key:
                return u
        raise KeyError(f"step {self.name} has no unit {key!r}")


def executor_map(executor: Executor) -> MapUnits:
    """The default way to run pending units: straight through the executor."""

    def map_units(step: Step, units: list[Unit], dirs: list[Path], step_fp: str) -> list[UnitResult]:
        results = executor.map(run_unit, [(step, u, d, step_fp) for u, d in zip(units, dirs)])
        if step.loads_models:
            executor.release_workers()
        return results

    return map_units


def run_step(
    step: Step, layout: RunLayout, executor: Executor | None = None, map_units: MapUnits | None = None
) -> StepResult:
    """Run `step`'s pending units and its reduce; return the finished step (see module docstring)."""
    map_units = map_units or executor_map(executor or InlineExecutor())
    t0 = time.time()
    step_fp = step.fingerprint()
    units = step.units()
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError(f"step {step.name}: two units share a key; keys must be unique")
    dirs = [layout.unit(step.name, u.key) for u in units]
    done = _finished_units(step_fp, units, dirs)
    pending = [(u, d) for u, d in zip(units, dirs) if u.key not in done]
    if pending:
        log.info("step %s: %d of %d units to run", step.name, len(pending), len(units))
        ran = map_units(step, [u for u, _ in pending], [d for _, d in pending], step_fp)
        done.update((r.key, r) for r in ran)
    results = [done[k] for k in keys]
    stats = StepStats()
    for r in results:
        stats.merge(r.stats)
    result = StepResult(step.name, step_fp, results, stats, units_run=len(pending))
    t_units = time.time() - t0
    if step.reduce_phase:
        _run_reduce(step, layout, result)
    _remove_stale_units(layout, step.name, set(keys))
    timing = {
        "started": round(t0, 3),
        "wall_s": round(time.time() - t0, 4),
        "units_wall_s": round(t_units, 4),
        "reduce_wall_s": round(time.time() - t0 - t_units, 4),
        "units_run": result.units_run,
        "reduce_run": result.reduce_run,
    }
    result.timing = timing
    atomic_write_json(
        layout.step_marker(step.name),
        {
            "fingerprint": step_fp,
            "units": [[r.key, r.output] for r in results],
            "stats": stats.to_json(),
            "reduce": result.reduce_stats,
            "output": result.output,
            "timing": timing,
        },
    )
    return result


def _finished_units(step_fp: str, units: list[Unit], dirs: list[Path]) -> dict[str, UnitResult]:
    done = {}
    for u, d in zip(units, dirs):
        r = finished(d, unit_fingerprint(step_fp, u))
        if r is not None:
            done[u.key] = r
    return done


def pending_units(step: Step, layout: RunLayout) -> list[Unit]:
    """The units of `step` that a run would compute (no matching marker): a caller starts costly services (vLLM
    servers) only when this is not empty."""
    units = step.units()
    done = _finished_units(step.fingerprint(), units, [layout.unit(step.name, u.key) for u in units])
    return [u for u in units if u.key not in done]


def concat_results(name: str, results: list[StepResult]) -> StepResult:
    """Several finished steps seen as one (their units in order): the real and the synthetic documents enter
    dedup as one stream, real first, so a real document survives the cluster it shares with a generation."""
    stats = StepStats()
    for r in results:
        stats.merge(r.stats)
    keys = [u.key for r in results for u in r.units]
    if len(set(keys)) != len(keys):
        raise ValueError(f"concat_results({name}): two units share a key")
    return StepResult(
        name,
        fingerprint([r.fingerprint for r in results]),
        [u for r in results for u in r.units],
        stats,
        units_run=sum(r.units_run for r in results),
    )


def _run_reduce(step: Step, layout: RunLayout, result: StepResult) -> None:
    reduce_dir = layout.reduce(step.name)
    reduce_fp = fingerprint(result.fingerprint, [(u.key, u.output) for u in result.units])
    marker = read_marker(reduce_dir, REDUCE_MARKER)
    result.reduce_dir = reduce_dir
    if marker is not None and marker.get("fingerprint") == reduce_fp:
        result.reduce_stats = marker["stats"]
        return
    remove_stale_temps(reduce_dir.parent, reduce_dir.name)
    tmp = reduce_dir.with_name(reduce_dir.name + temp_suffix())
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        stats = step.reduce(result.units, tmp)
        atomic_write_json(
            tmp / REDUCE_MARKER, {"fingerprint": reduce_fp, "output": dir_fingerprint(tmp), "stats": stats}
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_dir(tmp, reduce_dir)
    result.reduce_stats = stats
    result.reduce_run = True


def _remove_stale_units(layout: RunLayout, step: str, keep: set[str]) -> None:
    """Unit folders of an earlier input set (a removed file, another --limit) must not reach the corpus."""
    units_dir = layout.units(step)
    if not units_dir.is_dir():
        return
    for d in units_dir.iterdir():
        if d.is_dir() and ".tmp-" not in d.name and ".old" not in d.name and d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)
