"""Stage configuration: which sources, filters, dedup and decontamination a stage runs.

A stage file (`configs/stages/<stage>.toml`) holds::

    sources = "../sources/default.toml"   # relative to the stage file; --sources overrides
    [filters.<name>]  ...                 # one table per filter, `enabled = false` turns it off
    [dedup.exact] / [dedup.minhash]       # near-dup parameters
    [decontam] + [[decontam.eval_sets]]   # evaluation sets to decontaminate against
    [mixture] / [shards]                  # token budget per domain/source, tokenizer, seq_len (sharding/)
    [train] config = "../trainer/x.toml"  # trainer config used by `--train-steps N`
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = REPO_ROOT / "configs" / "stages"
STAGES = ("general", "reasoning", "long_context")


class ConfigError(ValueError):
    """A stage config is wrong; the message names the file and key."""


@dataclass(frozen=True)
class StageConfig:
    stage: str
    path: Path
    sources: Path
    filters: dict[str, Any] = field(default_factory=dict)
    dedup: dict[str, Any] = field(default_factory=dict)
    decontam: dict[str, Any] = field(default_factory=dict)
    mixture: dict[str, Any] = field(default_factory=dict)
    shards: dict[str, Any] = field(default_factory=dict)
    train_config: Path | None = None  # configs/trainer/*.toml used by --train-steps


_TOP_KEYS = {"stage", "sources", "filters", "dedup", "decontam", "mixture", "shards", "train"}


def load_stage_config(stage: str, config_path: Path | None = None) -> StageConfig:
    """Load `configs/stages/<stage>.toml` (or `config_path`) and check its top-level shape."""
    path = Path(config_path) if config_path else STAGES_DIR / f"{stage}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in STAGES_DIR.glob("*.toml"))
        raise ConfigError(f"no config for stage '{stage}' at {path}; known stages: {known} (or pass --config FILE)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("filters", "dedup", "decontam", "mixture", "shards", "train"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: '{key}' must be a table")
    if "sources" not in data or not isinstance(data["sources"], str):
        raise ConfigError(f"{path}: 'sources' (path of the sources file) is required")
    return StageConfig(
        stage=data.get("stage", stage),
        path=path,
        sources=(path.parent / data["sources"]).resolve(),
        filters=data.get("filters", {}),
        dedup=data.get("dedup", {}),
        decontam=data.get("decontam", {}),
        mixture=data.get("mixture", {}),
        shards=data.get("shards", {}),
        train_config=(path.parent / data["train"]["config"]).resolve() if "config" in data.get("train", {}) else None,
    )
