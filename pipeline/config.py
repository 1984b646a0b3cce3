"""Stage configuration: one typed, validated dataclass per table, all checked before any work starts.

A stage file (`configs/stages/<stage>.toml`) holds::

    sources = "../sources/default.toml"   # relative to the stage file; --sources overrides
    [filters.<name>]  ...                 # one table per filter, `enabled = false` turns it off
    [dedup.exact] / [dedup.minhash]       # dedup parameters (ExactDedupConfig, MinHashConfig)
    [decontam] + [[decontam.eval_sets]]   # evaluation sets to decontaminate against (DecontamConfig)
    [mixture] / [shards]                  # token budget per domain/source, tokenizer, seq_len (sharding/)
    [train] config = "../trainer/x.toml"  # trainer config used by `--train-steps N`
    [synth] model = ".." count = N       # synthetic documents from vLLM (SynthConfig, synth/step.py)

Every key, type and range is checked by `load_stage_config`; a wrong one is a one-line `ConfigError` naming the
file, the table, the key and the value. (Deterministic errors are never retried: only I/O is.)
"""

from __future__ import annotations

import inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = REPO_ROOT / "configs" / "stages"
STAGES = ("general", "reasoning", "long_context")


class ConfigError(ValueError):
    """A stage config is wrong; the message names the file, table, key and value."""


def _type_ok(value: Any, default: Any) -> bool:
    """Does a TOML value fit the type of the parameter's default (None: anything)?"""
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list | tuple | frozenset | set):
        return isinstance(value, list)
    return True


def check_kwargs(where: str, table: dict[str, Any], target: Any, skip: tuple[str, ...] = ()) -> None:
    """Check a table's keys and value types against `target`'s constructor parameters and defaults.

    Args:
        where: "<file>: [table]" for the message.
        target: a class (its `__init__`) or a function.
        skip: keys handled by the caller (enabled, eval_sets, ...).
    """
    params = inspect.signature(target).parameters
    allowed = [p for p in params if p not in ("self", "workdir")]
    for key, value in table.items():
        if key in skip:
            continue
        if key not in allowed:
            raise ConfigError(f"{where} {key} = {value!r}: unknown key; allowed: {sorted(allowed)}")
        if not _type_ok(value, params[key].default):
            raise ConfigError(f"{where} {key} = {value!r}: expected {type(params[key].default).__name__} "
                              f"like the default {params[key].default!r}")  # fmt: skip
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{where} {key} = {value!r}: must be >= 0")
        if (key.endswith("_ratio") or "score" in key) and isinstance(value, int | float) and value > 1:
            raise ConfigError(f"{where} {key} = {value!r}: a ratio or score must be in [0, 1]")


def _enabled(where: str, table: dict[str, Any]) -> bool:
    value = table.get("enabled", True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} enabled = {value!r}: must be true or false")
    return value


def _component_table(where: str, table: dict[str, Any], target: Any) -> tuple[bool, dict[str, Any]]:
    """(enabled, constructor arguments) of a table that holds one component's arguments and `enabled`, checked
    against the component's signature and built once so that its own range checks run."""
    check_kwargs(where, table, target, skip=("enabled",))
    params = {k: v for k, v in table.items() if k != "enabled"}
    _construct(where, target, params)
    return _enabled(where, table), params


@dataclass(frozen=True)
class ExactDedupConfig:
    """`[dedup.exact]`: `ExactDedup`'s arguments (dedup/exact.py) and `enabled`."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any]) -> ExactDedupConfig:
        from dedup.exact import ExactDedup

        return cls(*_component_table(where, table, ExactDedup))


@dataclass(frozen=True)
class MinHashConfig:
    """`[dedup.minhash]`: `MinHashDedup`'s arguments (dedup/minhash.py) and `enabled`."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any]) -> MinHashConfig:
        from dedup.minhash import MinHashDedup

        return cls(*_component_table(where, table, MinHashDedup))


_EVAL_SET_KEYS = {"name": str, "path": str, "fields": list, "required": bool, "shipped": str, "package": str}


@dataclass(frozen=True)
class DecontamConfig:
    """`[decontam]`: `Decontaminator`'s arguments, `enabled` and the `[[decontam.eval_sets]]`."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    eval_sets: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any]) -> DecontamConfig:
        from dedup.decontam import Decontaminator

        check_kwargs(where, table, Decontaminator, skip=("enabled", "eval_sets"))
        sets = table.get("eval_sets", [])
        if not isinstance(sets, list):
            raise ConfigError(f"{where} eval_sets = {sets!r}: must be an array of tables [[decontam.eval_sets]]")
        for i, es in enumerate(sets):
            w = f"{where.rsplit('[', 1)[0]}[[decontam.eval_sets]] #{i + 1}"
            for key, value in es.items():
                want = _EVAL_SET_KEYS.get(key)
                if want is None:
                    raise ConfigError(f"{w} {key} = {value!r}: unknown key; allowed: {sorted(_EVAL_SET_KEYS)}")
                if not isinstance(value, want):
                    raise ConfigError(f"{w} {key} = {value!r}: expected {want.__name__}")
            shipped = "shipped" in es or "package" in es  # a set of dedup.evalsets.SHIPPED
            for key in () if shipped else ("name", "path"):
                if key not in es:
                    raise ConfigError(f"{w}: '{key}' is required")
        params = {k: v for k, v in table.items() if k not in ("enabled", "eval_sets")}
        _construct(where, Decontaminator, {"eval_sets": [], **params})
        return cls(_enabled(where, table), params, tuple(sets))

    def as_table(self) -> dict[str, Any]:
        """The table as `dedup.steps.build_decontaminator` reads it."""
        return {**self.params, "eval_sets": list(self.eval_sets)}


_SYNTH_KEYS: dict[str, type | tuple[type, ...]] = {
    "enabled": bool, "model": str, "count": int, "templates": list, "servers": list, "num_local_servers": int,
    "seed": int, "batch_size": int, "max_concurrency": int, "sampling": dict, "server": dict,
    "seed_domains": list, "seed_langs": list, "seed_min_chars": int, "seed_max_chars": int,
}  # fmt: skip
_SERVER_KEYS = ("max_model_len", "dtype", "kv_cache_gib", "enforce_eager", "extra_args", "start_timeout_s")


@dataclass(frozen=True)
class SynthConfig:
    """`[synth]`: generate `count` synthetic documents from this stage's filtered documents (synth/step.py).

    model: a local Hugging Face folder (relative to the stage file); templates: names in synth/templates
    (default all); servers: URLs of running vLLM servers (default: `num_local_servers` started for the step);
    batch_size: requests per work unit; max_concurrency: requests in flight per server; sampling: request-body
    overrides (max_tokens, temperature, ...); server: local server settings (max_model_len, dtype, kv_cache_gib,
    ...); seed_*: which documents may seed (domains, languages, length in characters).
    """

    enabled: bool = False
    model: Path | None = None
    count: int = 0
    templates: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    num_local_servers: int = 1
    seed: int = 0
    batch_size: int = 32
    max_concurrency: int = 8
    sampling: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    seed_domains: tuple[str, ...] = ()
    seed_langs: tuple[str, ...] = ()
    seed_min_chars: int = 0
    seed_max_chars: int | None = None

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any], base_dir: Path) -> SynthConfig:
        if not table:
            return cls()
        for key, value in table.items():
            want = _SYNTH_KEYS.get(key)
            if want is None:
                raise ConfigError(f"{where} {key} = {value!r}: unknown key; allowed: {sorted(_SYNTH_KEYS)}")
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ConfigError(f"{where} {key} = {value!r}: expected {want.__name__}")
            if want is int and value < (0 if key in ("seed", "seed_min_chars") else 1):
                raise ConfigError(f"{where} {key} = {value!r}: must be >= {0 if key in ('seed', 'seed_min_chars') else 1}")
            if want is list and not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where} {key} = {value!r}: expected a list of strings")
        # A table without a model holds defaults (for `python -m flows.synth --model ...`): off unless enabled.
        enabled = _enabled(where, {"enabled": "model" in table, **table})
        for key in ("model", "count") if enabled else ():
            if key not in table:
                raise ConfigError(f"{where}: '{key}' is required (or enabled = false)")
        model = (base_dir / table["model"]).resolve() if "model" in table else None
        if enabled and model is not None and not (model / "config.json").is_file():
            raise ConfigError(f"{where} model = {table['model']!r}: {model} is not a Hugging Face model folder "
                              "(no config.json); export one with `python -m trainer.export_hf`")  # fmt: skip
        for key in table.get("server", {}):
            if key not in _SERVER_KEYS:
                raise ConfigError(f"{where} server.{key}: unknown key; allowed: {list(_SERVER_KEYS)}")
        if enabled:
            from synth.templates import TemplateError, load_templates

            try:
                load_templates(list(table.get("templates", [])) or None)
            except TemplateError as e:
                raise ConfigError(f"{where} templates: {e}") from e
        lists = {k: tuple(table[k]) for k in ("templates", "servers", "seed_domains", "seed_langs") if k in table}
        plain = {k: v for k, v in table.items() if k not in lists and k not in ("enabled", "model")}
        return cls(enabled=enabled, model=model, **lists, **plain)

    def step_params(self) -> dict[str, Any]:
        """The step's settings (and fingerprint): not the servers, which only answer."""
        return {"count": self.count, "seed": self.seed, "batch_size": self.batch_size, "sampling": self.sampling,
                "max_concurrency": self.max_concurrency}  # fmt: skip


_TRAIN_KEYS = ("config",)


def _construct(where: str, cls: Any, params: dict[str, Any]) -> None:
    """Build the component once, cheaply, so that its own range checks run before any work."""
    try:
        cls(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where} {e}") from e


@dataclass(frozen=True)
class StageConfig:
    stage: str
    path: Path
    sources: Path
    filters: dict[str, Any] = field(default_factory=dict)
    exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    mixture: dict[str, Any] = field(default_factory=dict)
    shards: dict[str, Any] = field(default_factory=dict)
    train_config: Path | None = None  # configs/trainer/*.toml used by --train-steps
    synth: SynthConfig = field(default_factory=SynthConfig)

    @property
    def dedup(self) -> dict[str, Any]:
        """The `[dedup]` tables as written (for fingerprints and reports)."""
        return {"exact": {"enabled": self.exact.enabled, **self.exact.params},
                "minhash": {"enabled": self.minhash.enabled, **self.minhash.params}}  # fmt: skip


_TOP_KEYS = {"stage", "sources", "filters", "dedup", "decontam", "mixture", "shards", "train", "synth"}


def load_stage_config(stage: str, config_path: Path | str | None = None) -> StageConfig:
    """Load `configs/stages/<stage>.toml` (or `config_path`) and check every table (see module docstring)."""
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
    for key in ("filters", "dedup", "decontam", "mixture", "shards", "train", "synth"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: '{key}' must be a table")
    if "sources" not in data or not isinstance(data["sources"], str):
        raise ConfigError(f"{path}: 'sources' (path of the sources file) is required")
    dedup = data.get("dedup", {})
    bad = set(dedup) - {"exact", "minhash"}
    if bad:
        raise ConfigError(f"{path}: [dedup.{sorted(bad)[0]}]: unknown dedup table; allowed: [dedup.exact], [dedup.minhash]")
    for name, table in dedup.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [dedup] {name} = {table!r}: must be a table [dedup.{name}]")
    train = data.get("train", {})
    for key, value in train.items():
        if key not in _TRAIN_KEYS:
            raise ConfigError(f"{path}: [train] {key} = {value!r}: unknown key; allowed: {list(_TRAIN_KEYS)}")
    train_config = None
    if "config" in train:
        if not isinstance(train["config"], str):
            raise ConfigError(f"{path}: [train] config = {train['config']!r}: must be a path (string)")
        train_config = (path.parent / train["config"]).resolve()
        if not train_config.is_file():
            raise ConfigError(f"{path}: [train] config = {train['config']!r}: {train_config} does not exist")
    filters = data.get("filters", {})
    _check_filters(path, filters)
    mixture, shards = data.get("mixture", {}), data.get("shards", {})
    _check_sharding(path, mixture, shards)
    return StageConfig(
        stage=data.get("stage", stage),
        path=path,
        sources=(path.parent / data["sources"]).resolve(),
        filters=filters,
        exact=ExactDedupConfig.from_table(f"{path}: [dedup.exact]", dedup.get("exact", {})),
        minhash=MinHashConfig.from_table(f"{path}: [dedup.minhash]", dedup.get("minhash", {})),
        decontam=DecontamConfig.from_table(f"{path}: [decontam]", data.get("decontam", {})),
        mixture=mixture,
        shards=shards,
        train_config=train_config,
        synth=SynthConfig.from_table(f"{path}: [synth]", data.get("synth", {}), path.parent),
    )


def _check_filters(path: Path, filters: dict[str, Any]) -> None:
    """Names and keys through `filters.chain`, then types and ranges against each filter's defaults."""
    import importlib

    from filters.chain import FILTERS, FilterConfigError, validate_chain_config

    try:
        validate_chain_config(filters)
    except FilterConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    for name, table in filters.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [filters] {name} = {table!r}: must be a table [filters.{name}]")
        module, cls_name = FILTERS[name]
        cls = getattr(importlib.import_module(module), cls_name)
        check_kwargs(f"{path}: [filters.{name}]", table, cls, skip=("enabled", "domains"))
        if name == "langid" and table.get("enabled", True):
            # Language codes, per-language thresholds and the model name are only known to the constructor,
            # which loads no model: build it once here so a bad code fails before any work.
            kwargs = {k: v for k, v in table.items() if k not in ("enabled", "domains")}
            try:
                cls(**kwargs)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{path}: [filters.langid]: {e}") from e


def _check_sharding(path: Path, mixture: dict[str, Any], shards: dict[str, Any]) -> None:
    from sharding.build import ShardsConfig
    from sharding.mixture import MixtureConfig

    try:
        MixtureConfig.from_dict(mixture)
        sc = ShardsConfig.from_dict(shards)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from e
    from sharding.tokenizer import available_tokenizers

    if sc.tokenizer not in available_tokenizers():
        raise ConfigError(f"{path}: [shards] tokenizer = {sc.tokenizer!r}: unknown; known: {available_tokenizers()}")

