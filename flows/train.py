"""`corpusforge-train`: the bundled MoE trainer on a stage's shards, as a Prefect flow (and deployment).

A thin wrapper around `trainer.train.train_from_manifest`: it resolves the stage's manifest and trainer config
from the run directory and stage file, trains (resuming from `<run>/train/checkpoint.pt` when present), and then
rebuilds the run's report so that its loss, learning-rate and expert-load curves show there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger


@flow(name="corpusforge-train", log_prints=True)
def train_flow(
    stage: str = "general",
    steps: int = 300,
    out: str | None = None,
    manifest: str | None = None,
    config: str | None = None,
    stage_config: str | None = None,
) -> dict[str, Any]:
    """Train the bundled MoE model on one stage's shards.

    Args:
        stage: general | reasoning | long_context: whose shards to train on.
        steps: total optimizer steps for the stage (a rerun resumes and stops here).
        out: the stage's run directory (default runs/<stage>); the trainer writes into `<out>/train`.
        manifest: the shards' manifest.json (default `<out>/shards/<stage>/manifest.json`).
        config: trainer config (configs/trainer/*.toml); default: the stage config's `[train]` table's.
        stage_config: stage config file (default configs/stages/<stage>.toml), read for its `[train]` table.
    """
    from pipeline.layout import RunLayout
    from report.artifacts import publish_artifacts
    from report.html import build_report
    from stage.config import load_stage_config
    from trainer.train import train_from_manifest

    logger = get_run_logger()
    layout = RunLayout(Path(out or f"runs/{stage}"))
    manifest_path = Path(manifest) if manifest else layout.manifest(stage)
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"no shards manifest at {manifest_path}; run `python -m flows.stage {stage} --out {layout.root}` first"
        )
    train_config = Path(config) if config else load_stage_config(stage, stage_config).train_config
    result = train_from_manifest(manifest_path, steps, config=train_config, out_dir=layout.train, log=logger.info)
    result = {k: v for k, v in result.items() if k != "losses"}
    if layout.funnel.is_file():  # a run made by the stage: its report gains the trainer's curves
        import json

        summary = json.loads(layout.funnel.read_text(encoding="utf-8"))
        summary["train"] = result
        path = build_report(layout.root)
        publish_artifacts(summary, layout)
        logger.info("report: %s", path)
    return result
