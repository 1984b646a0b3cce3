"""Progress of a stage's steps: while a step runs, a live bar on a terminal (units done/total, documents/s, MB/s,
drops so far) and a Prefect progress artifact on the flow run; when it ends, one plain line (`step_line`), on a
terminal and in CI alike.

`StepProgress(step, units)` is advanced once per finished work unit with its `UnitResult`::

    with StepProgress(step.name, len(units)) as progress:
        for future in as_completed(futures):
            progress.advance(future.result())
    say(step_line(run_step_result))
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

from core.console import console_enabled

MIN_UNITS = 2  # a step of one unit has nothing to show progress of
ARTIFACT_INTERVAL_S = 2.0  # at most one progress-artifact update per interval (each is an API call)


def unit_bytes(result: Any) -> int:
    """Bytes a finished unit handled: its `bytes` stat when the step counts them, else the size of its output."""
    counted = result.stats.extra.get("bytes")
    if isinstance(counted, int | float) and counted > 0:
        return int(counted)
    directory = Path(result.dir)
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0


def removed(stats: Any) -> int:
    """Documents a unit or step took out of the stream: dropped with a reason, or quarantined at ingest."""
    return sum(stats.dropped.values()) + sum(stats.quarantined.values())


def step_line(result: Any) -> str:
    """One line for a finished step (a `pipeline.runner.StepResult`): units (how many this run computed),
    documents in and out, drops, rate and wall time; `cached` when a rerun found every unit done."""
    s, wall, n = result.stats, float(result.timing.get("wall_s", 0.0)), len(result.units)
    units = f"{n:,} unit{'' if n == 1 else 's'}" + ("" if result.skipped else f" ({result.units_run:,} run)")
    line = f"{result.name:<24} {units:<20} {s.docs_in:>9,} in {s.docs_out:>9,} out {removed(s):>7,} dropped"
    if result.skipped:
        return line + "  cached"
    rate = f"{s.docs_in / wall:,.0f} docs/s" if s.docs_in and wall > 0 else ""
    return line + f"  {rate:>14}  {wall:>6.1f} s"


class StepProgress:
    """Progress of one step over its pending units.

    Args:
        step: the step's name (bar label, artifact description).
        units: how many units will be advanced.
        stream: where the bar goes (default stderr); it is shown only when `console_enabled(stream)`, and is
            cleared when the step ends (the step's `step_line` takes its place).
        artifact: also publish a Prefect progress artifact (only inside a flow run, only for MIN_UNITS+ units).
    """

    def __init__(self, step: str, units: int, stream: IO[str] | None = None, artifact: bool = True) -> None:
        from tqdm import tqdm

        self.step, self.units = step, units
        self.docs, self.bytes, self.dropped, self.done = 0, 0, 0, 0
        self._t0 = time.monotonic()
        self._bar = tqdm(
            total=units,
            desc=step,
            unit="unit",
            file=stream or sys.stderr,
            dynamic_ncols=True,
            disable=units < MIN_UNITS or not console_enabled(stream),
            leave=False,
        )
        self._artifact_id = None
        self._last_update = 0.0
        if artifact and units >= MIN_UNITS:
            self._artifact_id = _create_progress_artifact(step, units)

    def advance(self, result: Any) -> None:
        """Count one finished unit (a `pipeline.step.UnitResult`)."""
        self.done += 1
        self.docs += result.stats.docs_in
        self.bytes += unit_bytes(result)
        self.dropped += removed(result.stats)
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        self._bar.set_postfix_str(
            f"{self.docs / elapsed:,.0f} docs/s, {self.bytes / elapsed / 1e6:,.1f} MB/s, {self.dropped:,} dropped",
            refresh=False,
        )
        self._bar.update(1)
        now = time.monotonic()
        if self._artifact_id is not None and (
            now - self._last_update >= ARTIFACT_INTERVAL_S or self.done == self.units
        ):
            self._last_update = now
            _update_progress_artifact(self._artifact_id, 100.0 * self.done / max(self.units, 1))

    def close(self) -> None:
        self._bar.close()
        if self._artifact_id is not None:
            _update_progress_artifact(self._artifact_id, 100.0 * self.done / max(self.units, 1))

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create_progress_artifact(step: str, units: int) -> Any:
    from report.artifacts import in_flow_run

    if not in_flow_run():
        return None
    from prefect.artifacts import create_progress_artifact

    try:
        return create_progress_artifact(progress=0.0, description=f"step {step}: {units:,} work units")
    except Exception:
        return None


def _update_progress_artifact(artifact_id: Any, progress: float) -> None:
    from prefect.artifacts import update_progress_artifact

    try:
        update_progress_artifact(artifact_id=artifact_id, progress=progress)
    except Exception:
        pass
