"""Reading a stage file: TOML with its base file merged in, unchecked.

Checking the tables is `stage/config.py`'s work (it knows every step's parameters); reading one is not, and tools
on lower floors (`sharding.build`, benchmarks) need one raw table of a stage without importing every step package.
A base file (`base = "base.toml"`, relative to the stage file) holds what several stages share: the stage file is
merged on top of it (`merge_tables`), one level, no chains.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from core.paths import STAGES, STAGES_DIR


class ConfigError(ValueError):
    """A stage config is wrong; the message names the file, table, key and value."""


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: where both hold a table under a key, the tables merge key by key (at every
    depth); any other value of `override` (a number, a string, an array, an array of tables) replaces the
    base's whole. Neither argument is changed."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text: {e}") from e


def stage_path(stage: str, config_path: Path | str | None) -> Path:
    path = Path(config_path) if config_path else STAGES_DIR / f"{stage}.toml"
    if not path.is_file() or (config_path is None and stage not in STAGES):
        raise ConfigError(
            f"no config for stage '{stage}' at {path}; known stages: {sorted(STAGES)} (or pass --config FILE)"
        )
    return path


def read_stage_file(path: Path) -> tuple[dict[str, Any], Path | None]:
    """A stage file's tables with its base merged in (unchecked: `load_stage_config` checks them), and the base's
    path (None without one). For tools that need one raw table of a stage (`sharding.build`, benchmarks)."""
    data = read_toml(path)
    if "base" not in data:
        return data, None
    if not isinstance(data["base"], str):
        raise ConfigError(f"{path}: base = {data['base']!r}: expected a path (string) to a base file")
    base_path = (path.parent / data["base"]).resolve()
    if not base_path.is_file():
        raise ConfigError(f"{path}: base = {data['base']!r}: {base_path} does not exist")
    base = read_toml(base_path)
    for key in ("stage", "base"):
        if key in base:
            raise ConfigError(
                f"{base_path}: {key} = {base[key]!r}: a base file holds shared tables only "
                f"(no '{key}'; it belongs in the stage file {path})"
            )
    return merge_tables(base, {k: v for k, v in data.items() if k != "base"}), base_path
