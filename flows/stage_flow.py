"""The curriculum stage as a Prefect flow: each work unit of each step is a mapped Prefect task (so the UI shows them),
the task hands its unit to the executor (`--workers N` local processes, or Ray), and retries happen on I/O errors only.

`python -m flows.stage` (the command line, flows/stage.py) imports this module only once the private Prefect server's
process is started: importing Prefect takes ~0.8 s, which then runs beside the server's own start-up instead of
before it. `flows.stage.stage_flow` still names this flow (for deployments made before it moved here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from core.io import atomic_write_json, run_lock
from flows.stage import format_funnel, run_layout, train_line
from ingest.sources import load_sources
from pipeline.executors import Executor, make_executor
from pipeline.layout import RunLayout
from pipeline.runner import StepResult, run_step
from pipeline.step import Step, Unit, UnitResult, run_unit
from stage.config import SynthConfig, load_stage_config
from stage.run import run_stage

# Deterministic failures (a bad config, a bug) fail at once; only these I/O errors are worth a retry.
_NOT_TRANSIENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def io_error_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry a unit only when it failed on (transient) I/O."""
    try:
        state.result()
    except OSError as e:
        return not isinstance(e, _NOT_TRANSIENT)
    except BaseException:
        return False
    return False


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=io_error_only,
    cache_policy=NO_CACHE,
    task_run_name="{step_name}:{unit_key}",
)
def unit_task(
    step: Step, unit: Unit, unit_dir: Path, step_fp: str, executor: Executor, step_name: str, unit_key: str
) -> UnitResult:
    """One work unit, run wherever the executor runs it (this process, a worker process, a Ray node)."""
    return executor.submit(run_unit, step, unit, unit_dir, step_fp).result()


def prefect_map_units(executor: Executor):
    """`map_units` for `run_step`: the pending units of a step as mapped Prefect tasks."""

    def map_units(step: Step, units: list[Unit], dirs: list[Path], step_fp: str) -> list[UnitResult]:
        from prefect.futures import as_completed

        from report.progress import StepProgress

        futures = unit_task.map(
            unmapped(step),
            units,
            dirs,
            unmapped(step_fp),
            unmapped(executor),
            unmapped(step.name),
            [u.key for u in units],
        )
        with StepProgress(step.name, len(units)) as progress:  # a bar on a terminal, a progress artifact in the UI
            for f in as_completed(futures):
                progress.advance(f.result())
        results = [f.result() for f in futures]
        if step.loads_models:
            executor.release_workers()  # the models' memory leaves with the workers (pipeline/executors.py)
        return results

    return map_units


@task(cache_policy=NO_CACHE)
def train_task(manifest: str, layout: RunLayout, train_config: Path | None, num_steps: int) -> dict[str, Any]:
    # torch is imported here only: the data path never needs it.
    from trainer.train import train_from_manifest

    result = train_from_manifest(manifest, num_steps, config=train_config, out_dir=layout.train)
    return {k: v for k, v in result.items() if k != "losses"}


@flow(name="corpusforge-stage", log_prints=True)
def stage_flow(
    stage: str = "general",
    sources: str | None = None,
    out: str | None = None,
    limit: int | None = None,
    config: str | None = None,
    dry_run: bool = False,
    train_steps: int | None = None,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    synth: dict[str, Any] | None = None,
    synth_from: str | None = None,
) -> dict[str, Any]:
    """Run one curriculum stage end to end and return its funnel.

    Args:
        stage: general | reasoning | long_context.
        sources: sources file (TOML); defaults to the one the stage config names.
        out: run directory; defaults to runs/<stage>.
        limit: read at most this many records per source.
        config: stage config file; defaults to configs/stages/<stage>.toml.
        dry_run: build (or reuse) the filtered corpus, print the token budget per source, write no shards.
        train_steps: then train the bundled MoE trainer on the stage's manifest for this many steps
            (continuing from the previous stage's checkpoint; config from the stage's `[train]` table).
        workers: processes (or Ray CPUs) that run the work units.
        executor: local | ray.
        ray_address: a Ray cluster to use (default: RAY_ADDRESS, else a local Ray started for this run).
        synth: a `[synth]` table that replaces the stage config's (`python -m flows.synth`).
        synth_from: a finished corpus to draw synth seeds from (default: this stage's filtered documents).
    """
    from core.console import say
    from report.artifacts import publish_artifacts
    from report.data import collect
    from report.html import build_report
    from report.progress import step_line

    logger = get_run_logger()
    cfg = load_stage_config(stage, config)
    if synth is not None:
        cfg = dataclasses.replace(cfg, synth=SynthConfig.from_table(f"{cfg.path}: [synth]", synth, cfg.path.parent))
    specs = load_sources(Path(sources) if sources else cfg.sources)
    layout = run_layout(stage, out)
    # NOTE: no Prefect concurrency slot per run directory here: a SIGKILLed run would hold it until its lease
    # expires, and the resume would wait. Deployments allow one run at a time (flows/deployments.toml); the
    # file lock guards every other case and dies with its process.
    with run_lock(layout.root), make_executor(executor, workers, ray_address) as ex:
        map_units = prefect_map_units(ex)

        def run(step: Step) -> StepResult:
            result = run_step(step, layout, map_units=map_units)
            logger.info(
                "step %s: %d units, %d run, %d docs in, %d out",
                step.name,
                len(result.units),
                result.units_run,
                result.stats.docs_in,
                result.stats.docs_out,
            )
            say(step_line(result))  # the terminal's one line for the step (the record above goes to the log file)
            return result

        summary = run_stage(
            cfg, specs, layout, run, limit=limit, dry_run=dry_run, synth_seeds=Path(synth_from) if synth_from else None
        )
        summary["executor"] = {"kind": executor, "workers": workers}
        summary["config"] = str(cfg.path.resolve())
        if train_steps and not dry_run:
            summary["train"] = train_task(summary["shards"]["manifest"], layout, cfg.train_config, train_steps)
            say(train_line(summary["train"]))
        atomic_write_json(layout.funnel, summary)
        logger.info(format_funnel(summary))
        # Read once for the page and the artifacts (~0.3 s each time), with the config loaded above (~0.1 s).
        report = collect(layout.root, filters=cfg.filters)
        logger.info("report: %s", build_report(layout.root, report))
        publish_artifacts(summary, layout, report)
    return summary
