"""Progress of long steps: a console bar (documents/s, MB/s, ETA) on a terminal, silent in CI and in logs; and a
Prefect progress artifact on the flow run while a flow runs.

`StepProgress(step, units)` is advanced once per finished work unit with its `UnitResult`::

    progress = StepProgress(step.name, len(units))
    for future in as_completed(futures):
        progress.advance(future.result())
    progress.close()
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO, Any

MIN_UNITS = 2  # a step of one unit has nothing to show progress of
ARTIFACT_INTERVAL_S = 2.0  # at most one progress-artifact update per interval (each is an API call)


def console_enabled(stream: IO[str] | None = None) -> bool:
    """Bars only on an interactive terminal, never in CI (`CI` set) or with `CORPUSFORGE_NO_PROGRESS` set."""
    stream = stream or sys.stderr
    if os.environ.get("CI") or os.environ.get("CORPUSFORGE_NO_PROGRESS"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def unit_bytes(result: Any) -> int:
    """Bytes a finished unit handled: its `bytes` stat when the step counts them, else the size of its output."""
    counted = result.stats.extra.get("bytes")
    if isinstance(counted, int | float) and counted > 0:
        return int(counted)
    directory = Path(result.dir)
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0


class StepProgress:
    """Progress of one step over its pending units.

    Args:
        step: the step's name (bar label, artifact description).
        units: how many units will be advanced.
        stream: where the bar goes (default stderr); it is shown only when `console_enabled(stream)`.
        artifact: also publish a Prefect progress artifact (only inside a flow run, only for MIN_UNITS+ units).
    """

    def __init__(self, step: str, units: int, stream: IO[str] | None = None, artifact: bool = True) -> None:
        from tqdm import tqdm

        self.step, self.units = step, units
        self.docs, self.bytes, self.done = 0, 0, 0
        self._t0 = time.monotonic()
        self._bar = tqdm(total=units, desc=step, unit="unit", file=stream or sys.stderr, dynamic_ncols=True,
                         disable=units < MIN_UNITS or not console_enabled(stream), leave=True)  # fmt: skip
        self._artifact_id = None
        self._last_update = 0.0
        if artifact and units >= MIN_UNITS:
            self._artifact_id = _create_progress_artifact(step, units)

    def advance(self, result: Any) -> None:
        """Count one finished unit (a `pipeline.step.UnitResult`)."""
        self.done += 1
        self.docs += result.stats.docs_in
        self.bytes += unit_bytes(result)
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"{self.docs / elapsed:,.0f} docs/s, {self.bytes / elapsed / 1e6:,.1f} MB/s",
                                  refresh=False)  # fmt: skip
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
    except Exception:  # noqa: BLE001 - progress display must never fail a step
        return None


def _update_progress_artifact(artifact_id: Any, progress: float) -> None:
    from prefect.artifacts import update_progress_artifact

    try:
        update_progress_artifact(artifact_id=artifact_id, progress=progress)
    except Exception:  # noqa: BLE001 - progress display must never fail a step
        pass
