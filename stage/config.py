"""Stage configuration: one typed, validated dataclass per table, all checked before any work starts.

A stage file (`configs/stages/<stage>.toml`) holds::

    base = "base.toml"                    # optional: the shared tables this file changes (see below)
    sources = "../sources/default.toml"   # relative to the stage file; --sources overrides
    [filters.<name>]  ...                 # one table per filter, `enabled = false` turns it off
    [dedup.exact] / [dedup.minhash]       # dedup parameters (ExactDedupConfig, MinHashConfig)
    [decontam] + [[decontam.eval_sets]]   # evaluation sets to decontaminate against (DecontamConfig)
    [mixture] / [shards]                  # token budget per domain/source, tokenizer, seq_len (sharding/)
    [train] config = "../trainer/x.toml"  # trainer config used by `--train-steps N`
    [synth] model = ".." count = N       # synthetic documents from vLLM (SynthConfig, synth/step.py)
    [scorers.<name>] model = "CLS_DIR"   # a classifier's score per document, after the filters (scoring/config.py)

Every key, type and range is checked by `load_stage_config`; a wrong one is a one-line `ConfigError` naming the
file, the table, the key and the value (types through `core.config_types`, against the type hints of the dataclass
or constructor each table fills; the `[train]` table's trainer file is loaded and checked too). Deterministic
errors are never retried: only I/O is.

A base file (`base = "base.toml"`, relative to the stage file) holds what several stages share, so that each
stage file states only what differs. The stage file is merged on top of it (`core.stage_files.merge_tables`): tables merge key by
key, at every depth; any other value replaces the base's, arrays too (an array is never appended to, so
`domains = ["web"]` or `[[shards.buckets]]` in a stage file is the whole list). A base holds no `stage` and no
`base` of its own (one level, no chains); relative paths in it are read relative to the stage file, as if written
there. The base is checked on its own first, so a wrong value in it names the base file; then the merged tables
are checked as one stage file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config_types import check_table, type_hints_of, type_mismatch
from core.stage_files import ConfigError, read_stage_file, read_toml, stage_path
from synth.routes import SynthRoute

if TYPE_CHECKING:
    from scoring.config import ScorerConfig


def check_kwargs(where: str, table: dict[str, Any], target: Any, skip: tuple[str, ...] = ()) -> None:
    """Check a table's keys and value types against `target`'s constructor parameters and their type hints, then
    the ranges every component shares (numbers >= 0, ratios and scores in [0, 1]).

    Args:
        where: "<file>: [table]" for the message.
        target: a class (its `__init__`) or a function.
        skip: keys handled by the caller (enabled, eval_sets, ...).
    """
    hints = {k: v for k, v in type_hints_of(target).items() if k != "workdir"}
    check_table(where, table, hints, ConfigError, skip)
    for key, value in table.items():
        if key in skip:
            continue
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


# Keys of a [dedup.*] table that belong to the stage, not to the dedup component's constructor.
_DEDUP_STAGE_KEYS = {"enabled": bool, "per_language": bool}


def _dedup_table(where: str, table: dict[str, Any], target: Any) -> tuple[bool, bool, dict[str, Any]]:
    """(enabled, per_language, constructor arguments) of a `[dedup.*]` table, each checked."""
    check_table(where, {k: v for k, v in table.items() if k in _DEDUP_STAGE_KEYS}, _DEDUP_STAGE_KEYS, ConfigError)
    enabled, params = _component_table(where, {k: v for k, v in table.items() if k != "per_language"}, target)
    return enabled, table.get("per_language", False), params


@dataclass(frozen=True)
class ExactDedupConfig:
    """`[dedup.exact]`: `ExactDedup`'s arguments (dedup/exact.py), `enabled`, and `per_language`: documents
    collide only with documents of the same `lang` (FineWeb-2 deduplicates each language on its own)."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    per_language: bool = False

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any]) -> ExactDedupConfig:
        from dedup.exact import ExactDedup

        enabled, per_language, params = _dedup_table(where, table, ExactDedup)
        return cls(enabled, params, per_language)


@dataclass(frozen=True)
class MinHashConfig:
    """`[dedup.minhash]`: `MinHashDedup`'s arguments (dedup/minhash.py), `enabled` and `per_language` (as
    `ExactDedupConfig`)."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    per_language: bool = False

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any]) -> MinHashConfig:
        from dedup.minhash import MinHashDedup

        enabled, per_language, params = _dedup_table(where, table, MinHashDedup)
        return cls(enabled, params, per_language)


_EVAL_SET_KEYS = {"name": str, "path": str, "fields": list[str], "required": bool, "shipped": str, "package": str}


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
            if not isinstance(es, dict):
                raise ConfigError(f'{w} = {es!r}: expected a table such as {{ shipped = "gsm8k" }}')
            check_table(w, es, _EVAL_SET_KEYS, ConfigError)
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


_SERVER_KEYS = ("max_model_len", "dtype", "kv_cache_gib", "enforce_eager", "extra_args", "start_timeout_s")


@dataclass(frozen=True)
class SynthConfig:
    """`[synth]`: generate `count` synthetic documents from this stage's filtered documents (synth/step.py).

    model: a local Hugging Face folder (relative to the stage file); templates: names in synth/templates
    (default all); servers: URLs of running vLLM servers (default: `num_local_servers` started for the step);
    batch_size: requests per work unit; max_concurrency: requests in flight per server; sampling: request-body
    overrides (max_tokens, temperature, ...); server: local server settings (max_model_len, dtype, kv_cache_gib,
    ...); seed_*: which documents may seed (domains, languages, length in characters); route: the templates of
    each seed by the bucket of its score (`[synth.route]`, synth/routes.py).
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
    route: SynthRoute | None = None

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any], base_dir: Path) -> SynthConfig:
        if not table:
            return cls()
        hints = type_hints_of(cls)
        check_table(where, table, hints, ConfigError)
        for key, value in table.items():
            least = 0 if key in ("seed", "seed_min_chars") else 1
            if hints[key] in (int, int | None) and value < least:
                raise ConfigError(f"{where} {key} = {value!r}: must be >= {least}")
        # A table without a model holds defaults (for `python -m flows.synth --model ...`): off unless enabled.
        enabled = _enabled(where, {"enabled": "model" in table, **table})
        for key in ("model", "count") if enabled else ():
            if key not in table:
                raise ConfigError(f"{where}: '{key}' is required (or enabled = false)")
        model = (base_dir / table["model"]).resolve() if "model" in table else None
        if enabled and model is not None and not (model / "config.json").is_file():
            raise ConfigError(
                f"{where} model = {table['model']!r}: {model} is not a Hugging Face model folder "
                "(no config.json); export one with `python -m trainer.export_hf`"
            )
        from synth.server import EngineServer

        server_hints = type_hints_of(EngineServer)
        for key, value in table.get("server", {}).items():
            if key not in _SERVER_KEYS:
                raise ConfigError(f"{where} server.{key}: unknown key; allowed: {list(_SERVER_KEYS)}")
            problem = type_mismatch(f"server.{key}", value, server_hints[key])
            if problem:
                raise ConfigError(f"{where} {problem}")
        if enabled:
            from synth.templates import TemplateError, load_templates

            try:
                load_templates(list(table.get("templates", [])) or None)
            except TemplateError as e:
                raise ConfigError(f"{where} templates: {e}") from e
        lists = {k: tuple(table[k]) for k in ("templates", "servers", "seed_domains", "seed_langs") if k in table}
        plain = {k: v for k, v in table.items() if k not in lists and k not in ("enabled", "model", "route")}
        route = (
            SynthRoute.from_table(f"{where} [synth.route]", table["route"], ConfigError) if "route" in table else None
        )
        return cls(enabled=enabled, model=model, route=route, **lists, **plain)

    def step_params(self) -> dict[str, Any]:
        """The step's settings (and fingerprint): not the servers, which only answer."""
        return {
            "count": self.count,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "sampling": self.sampling,
            "max_concurrency": self.max_concurrency,
        }


_TRAIN_KEYS = {"config": str}  # a trainer file (configs/trainer/*.toml), relative to the stage file


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
    base: Path | None = None  # the base file merged under the stage file, if it names one
    filters: dict[str, Any] = field(default_factory=dict)
    exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    mixture: dict[str, Any] = field(default_factory=dict)
    shards: dict[str, Any] = field(default_factory=dict)
    train_config: Path | None = None  # configs/trainer/*.toml used by --train-steps
    synth: SynthConfig = field(default_factory=SynthConfig)
    scorers: tuple[ScorerConfig, ...] = ()  # `[scorers.<name>]`, in name order

    @property
    def dedup(self) -> dict[str, Any]:
        """The `[dedup]` tables as written (for fingerprints and reports)."""
        tables = {"exact": self.exact, "minhash": self.minhash}
        return {name: {"enabled": t.enabled, "per_language": t.per_language, **t.params} for name, t in tables.items()}


_TABLES = ("filters", "dedup", "decontam", "mixture", "shards", "train", "synth", "scorers")
_TOP_KEYS = {"stage", "sources", "base", *_TABLES}
_TOP_HINTS = {"stage": str, "sources": str, "base": str}


def load_stage_config(stage: str, config_path: Path | str | None = None) -> StageConfig:
    """Load `configs/stages/<stage>.toml` (or `config_path`), merged on its base, and check every table (see the
    module docstring)."""
    path = stage_path(stage, config_path)
    data, base_path = read_stage_file(path)
    if base_path is not None:  # a wrong value of the base names the base file
        _check_tables(base_path, read_toml(base_path), path.parent)
    if "sources" not in data or not isinstance(data["sources"], str):
        raise ConfigError(f"{path}: 'sources' (path of the sources file) is required")
    tables = _check_tables(path, data, path.parent)
    _check_score_users(path, tables["mixture"], tables["synth"], tables["scorers"])
    return StageConfig(
        stage=data.get("stage", stage),
        path=path,
        base=base_path,
        sources=(path.parent / data["sources"]).resolve(),
        **tables,
    )


def _check_score_users(
    path: Path, mixture: dict[str, Any], synth: SynthConfig, scorers: tuple[ScorerConfig, ...]
) -> None:
    """A score that `[mixture.score_buckets]` or `[synth.route]` reads must be one of the stage's `[scorers]` (a
    multi-class one's: `<name>.<class>`)."""
    names = [key for s in scorers for key in s.score_keys]
    for table, scorer in (
        ("[mixture.score_buckets]", mixture.get("score_buckets", {}).get("scorer")),
        ("[synth.route]", synth.route.scorer if synth.route is not None else None),
    ):
        if scorer is not None and scorer not in names:
            raise ConfigError(
                f"{path}: {table} scorer = {scorer!r}: no [scorers.{scorer}] in this stage; its scorers: {names}"
            )


def _check_tables(path: Path, data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Check every table of a stage file (or of a base file) and return StageConfig's typed fields but the
    stage, path and sources. `path` names the file in messages; relative paths are read from `base_dir`."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key in _TABLES:
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: '{key}' must be a table")
    check_table(f"{path}:", {k: v for k, v in data.items() if k in _TOP_HINTS}, _TOP_HINTS, ConfigError)
    dedup = data.get("dedup", {})
    bad = set(dedup) - {"exact", "minhash"}
    if bad:
        raise ConfigError(
            f"{path}: [dedup.{sorted(bad)[0]}]: unknown dedup table; allowed: [dedup.exact], [dedup.minhash]"
        )
    for name, table in dedup.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [dedup] {name} = {table!r}: must be a table [dedup.{name}]")
    train = data.get("train", {})
    check_table(f"{path}: [train]", train, _TRAIN_KEYS, ConfigError)
    train_config = _check_train_config(path, train["config"], base_dir) if "config" in train else None
    filters = data.get("filters", {})
    _check_filters(path, filters)
    mixture, shards = data.get("mixture", {}), data.get("shards", {})
    _check_sharding(path, mixture, shards)
    return {
        "filters": filters,
        "exact": ExactDedupConfig.from_table(f"{path}: [dedup.exact]", dedup.get("exact", {})),
        "minhash": MinHashConfig.from_table(f"{path}: [dedup.minhash]", dedup.get("minhash", {})),
        "decontam": DecontamConfig.from_table(f"{path}: [decontam]", data.get("decontam", {})),
        "mixture": mixture,
        "shards": shards,
        "train_config": train_config,
        "synth": SynthConfig.from_table(f"{path}: [synth]", data.get("synth", {}), base_dir),
        "scorers": _check_scorers(path, data.get("scorers", {}), base_dir),
    }


def _check_scorers(path: Path, scorers: dict[str, Any], base_dir: Path) -> tuple[ScorerConfig, ...]:
    """Each `[scorers.<name>]` table and its classifier folder (card, model sha256), in name order."""
    from scoring.config import ScorerConfig

    checked = []
    for name in sorted(scorers):
        if not isinstance(scorers[name], dict):
            raise ConfigError(f"{path}: [scorers] {name} = {scorers[name]!r}: must be a table [scorers.{name}]")
        where = f"{path}: [scorers.{name}]"
        checked.append(ScorerConfig.from_table(where, name, scorers[name], base_dir, ConfigError))
    return tuple(checked)


def _check_train_config(path: Path, value: str, base_dir: Path) -> Path:
    """The `[train]` table's trainer file, loaded and checked (`trainer.config`: pure Python, no torch) so that a
    wrong value in it fails now, not after the data work, when `--train-steps` starts the trainer."""
    from trainer.config import ConfigError as TrainerConfigError
    from trainer.config import load_config

    train_config = (base_dir / value).resolve()
    if not train_config.is_file():
        raise ConfigError(f"{path}: [train] config = {value!r}: {train_config} does not exist")
    try:
        load_config(train_config)
    except (TrainerConfigError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: [train] config = {value!r}: {e}") from e
    return train_config


def _check_filters(path: Path, filters: dict[str, Any]) -> None:
    """Names and keys through `filters.chain`, then types and ranges against each filter's type hints."""
    import importlib

    from filters.chain import FILTERS, FilterConfigError, validate_chain_config

    for name, table in filters.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [filters] {name} = {table!r}: must be a table [filters.{name}]")
    try:
        validate_chain_config(filters)
    except FilterConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    for name, table in filters.items():
        module, cls_name = FILTERS[name]
        cls = getattr(importlib.import_module(module), cls_name)
        # `domains` is the chain's (checked above) unless the filter takes it itself (books filters: a default)
        skip = ("enabled",) if "domains" in type_hints_of(cls) else ("enabled", "domains")
        check_kwargs(f"{path}: [filters.{name}]", table, cls, skip=skip)
        if name == "langid" and table.get("enabled", True):
            # Language codes, per-language thresholds and the model name are only known to the constructor,
            # which loads no model: build it once here so a bad code fails before any work.
            kwargs = {k: v for k, v in table.items() if k not in ("enabled", "domains")}
            try:
                cls(**kwargs)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{path}: [filters.langid]: {e}") from e


def _check_sharding(path: Path, mixture: dict[str, Any], shards: dict[str, Any]) -> None:
    from sharding.config import ShardsConfig
    from sharding.mixture import MixtureConfig

    try:
        MixtureConfig.from_dict(mixture)
        sc = ShardsConfig.from_dict(shards)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from e
    from sharding.tokenizer import available_tokenizers

    if sc.tokenizer not in available_tokenizers():
        raise ConfigError(f"{path}: [shards] tokenizer = {sc.tokenizer!r}: unknown; known: {available_tokenizers()}")
