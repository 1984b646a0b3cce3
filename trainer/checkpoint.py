"""Checkpoints: one file per stage's training (model, optimizers, data position, RNG, config), written to a
temporary name and renamed; read back with `weights_only=True` (no pickled code). A stage starts from the previous
stage's checkpoint (general -> reasoning -> long_context), found through the run folders.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from core.paths import STAGES
from pipeline.layout import RunLayout
from trainer.config import ModelConfig
from trainer.model import MoETransformer

CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "log.jsonl"  # one JSON row per logged step, beside the checkpoint
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Safe loading (no pickled code): tensors, numbers, strings and containers only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path}: version {state.get('version')}, expected {CHECKPOINT_VERSION}")
    return state


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def previous_stage_checkpoint(manifest_path: Path, stage: str) -> Path | None:
    """`<runs>/<previous stage>/train/checkpoint.pt` for a manifest at `<runs>/<stage>/shards/<stage>/`."""
    if stage not in STAGES or STAGES.index(stage) == 0:
        return None
    run = RunLayout.of_manifest(manifest_path)
    if run.root.parent == run.root:  # the run is the filesystem root: there is no runs folder around it
        return None
    return RunLayout(run.root.parent / STAGES[STAGES.index(stage) - 1]).train / CHECKPOINT


def load_init_weights(model: MoETransformer, path: Path) -> dict[str, Any]:
    """Load a previous stage's weights into `model`; RoPE base, YaRN and context length may differ."""
    state = load_checkpoint(path)
    old = ModelConfig(**state["config"]["model"])
    if old.architecture() != model.cfg.architecture():
        diff = {
            k: (v, model.cfg.architecture()[k])
            for k, v in old.architecture().items()
            if model.cfg.architecture()[k] != v
        }
        raise ValueError(f"init_from {path}: architecture differs from this config (checkpoint, config): {diff}")
    model.load_state_dict(state["model"])
    return {
        "path": str(path),
        "stage": state.get("stage"),
        "step": state["step"],
        "rope_theta": (old.rope_theta, model.cfg.rope_theta),
        "rope_scaling": (old.rope_scaling, model.cfg.rope_scaling),
    }
