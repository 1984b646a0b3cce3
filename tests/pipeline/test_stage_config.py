"""Stage config files: shipped ones load, wrong ones give a clear error naming the file and key."""

from pathlib import Path

import pytest

from filters.chain import FilterConfigError, validate_chain_config
from pipeline.config import STAGES, ConfigError, load_stage_config


@pytest.mark.parametrize("stage", STAGES)
def test_shipped_stage_configs_load_and_validate(stage):
    cfg = load_stage_config(stage)
    assert cfg.stage == stage and cfg.sources.is_file()
    validate_chain_config(cfg.filters)
    assert cfg.shards["seq_len"] == (32768 if stage == "long_context" else 4096)
    assert cfg.train_config is not None and cfg.train_config.is_file()


@pytest.mark.parametrize(
    "body, message",
    [
        ('sources = "x.toml"\ncolour = 1\n', "unknown top-level key"),
        ("[filters]\n", "'sources'"),
        ('sources = "x.toml"\nfilters = 3\n', "'filters' must be a table"),
        ("sources = = 1", "not valid TOML"),
        # checked by the filter's constructor (it loads no model), still before any work
        ('sources = "x.toml"\n[filters.langid]\nmin_scores = { xx = 0.5 }\n', r"\[filters.langid\].*unknown language code 'xx'"),
        ('sources = "x.toml"\n[filters.langid]\nmodel = "lid177"\n', r"\[filters.langid\]"),
    ],
)
def test_wrong_stage_config(tmp_path: Path, body: str, message: str):
    path = tmp_path / "stage.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_stage_config("general", path)


def test_unknown_stage_names_the_known_ones():
    with pytest.raises(ConfigError, match="known stages"):
        load_stage_config("pretraining")


def test_filter_config_is_validated_without_building_filters():
    with pytest.raises(FilterConfigError, match=r"\[filters.toxicity\]: unknown key"):
        validate_chain_config({"toxicity": {"max_scor": 0.5}})
    with pytest.raises(FilterConfigError, match="'enabled' must be true or false"):
        validate_chain_config({"pii": {"enabled": "no"}})
    validate_chain_config({"toxicity": {"enabled": False, "max_scor": 0.5}})  # disabled: not checked
