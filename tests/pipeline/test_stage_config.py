"""Stage config files: shipped ones load, wrong ones give a clear error naming the file and key."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.paths import STAGES, STAGES_DIR
from core.stage_files import ConfigError, merge_tables
from filters.chain import FilterConfigError, validate_chain_config
from stage.config import load_stage_config


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
        (
            'sources = "x.toml"\n[filters.langid]\nmin_scores = { xx = 0.5 }\n',
            r"\[filters.langid\].*unknown language code 'xx'",
        ),
        ('sources = "x.toml"\n[filters.langid]\nmodel = "lid177"\n', r"\[filters.langid\]"),
        # a value no export writer knows (was refused only when the shards were written, after all the work)
        ('sources = "x.toml"\n[shards]\nexports = ["parquet"]\n', r"\[shards\] exports = \['parquet'\]: unknown"),
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


# --- every value type-checked before any work (issue 23 item 6) ---------------------------------------------------


@pytest.mark.parametrize(
    "tables, table, key, value",
    [
        ('[shards]\nseq_len = "1024"', "[shards]", "seq_len", "'1024'"),  # was: '<' not supported between str and int
        ("[shards]\nkeep_token_cache = 1", "[shards]", "keep_token_cache", "1"),  # 1 is not true
        ("[shards]\nseq_len = true", "[shards]", "seq_len", "True"),  # nor true an integer
        ('[shards]\nexports = ["datatrove", 3]', "[shards]", "exports[1]", "3"),
        ('[[shards.buckets]]\nname = "a"\nmin_tokens = "5"', "[shards]", "buckets[0].min_tokens", "'5'"),
        ("[mixture]\nseed = 1.5", "[mixture]", "seed", "1.5"),
        ('[mixture]\nmax_repeats = "4"', "[mixture]", "max_repeats", "'4'"),  # float("4") would have taken it
        ("[mixture.domains]\nweb = true", "[mixture]", "domains.web", "True"),
        ('[mixture.sources.gsm8k]\nweight = "2"', "[mixture]", "sources.gsm8k.weight", "'2'"),
        ("[dedup.minhash]\nnum_bands = 2.5", "[dedup.minhash]", "num_bands", "2.5"),
        ('[dedup.exact]\nnormalize = "yes"', "[dedup.exact]", "normalize", "'yes'"),
        ('[decontam]\nmin_coverage = "0.6"', "[decontam]", "min_coverage", "'0.6'"),
        (
            '[[decontam.eval_sets]]\nshipped = "gsm8k"\nrequired = "yes"',
            "[[decontam.eval_sets]] #1",
            "required",
            "'yes'",
        ),
        ("[filters.gopher_quality]\nmin_doc_words = true", "[filters.gopher_quality]", "min_doc_words", "True"),
        ('[filters.pii]\nkinds = "email"', "[filters.pii]", "kinds", "'email'"),  # a string is not an array
        ('[filters.books_quality]\ndomains = "books"', "[filters.books_quality]", "domains", "'books'"),
        (
            '[filters.gopher_repetition]\ntop_n_grams = [[2, "x"]]',
            "[filters.gopher_repetition]",
            "top_n_grams[0][1]",
            "'x'",
        ),
        ("[train]\nconfig = 3", "[train]", "config", "3"),
        ('[synth]\ncount = "5"', "[synth]", "count", "'5'"),
        ('[synth]\ntemplates = ["qa", 2]', "[synth]", "templates[1]", "2"),
        ("[synth]\nserver = { dtype = 3 }", "[synth]", "server.dtype", "3"),
    ],
)
def test_a_wrongly_typed_value_names_file_table_key_and_value(tmp_path: Path, tables, table, key, value):
    path = tmp_path / "stage.toml"
    path.write_text(f'sources = "x.toml"\n{tables}\n')
    with pytest.raises(ConfigError) as e:
        load_stage_config("general", path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}: {table} {key} = {value}: expected"), message


def test_a_wrongly_typed_top_level_value_names_the_file(tmp_path: Path):
    path = tmp_path / "stage.toml"
    path.write_text('stage = 3\nsources = "x.toml"\n')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: stage = 3: expected a string$"):
        load_stage_config("general", path)


def test_an_integer_where_a_number_is_expected_is_accepted(tmp_path: Path):
    path = tmp_path / "stage.toml"
    path.write_text('sources = "x.toml"\n[mixture]\nmax_repeats = 4\n[filters.toxicity]\nmax_score = 1\n')
    cfg = load_stage_config("general", path)
    assert cfg.mixture["max_repeats"] == 4 and cfg.filters["toxicity"]["max_score"] == 1


def test_the_train_tables_trainer_file_is_checked_too(tmp_path: Path):
    trainer = tmp_path / "trainer.toml"
    trainer.write_text('[train]\nlr = "3e-4"\n')
    path = tmp_path / "stage.toml"
    path.write_text('sources = "x.toml"\n[train]\nconfig = "trainer.toml"\n')
    with pytest.raises(ConfigError) as e:
        load_stage_config("general", path)
    assert str(e.value) == f"{path}: [train] config = 'trainer.toml': {trainer} [train] lr = '3e-4': expected a number"


def test_a_wrongly_typed_value_is_exit_2_before_any_work(tmp_path: Path):
    from core.paths import REPO_ROOT

    path = tmp_path / "stage.toml"
    path.write_text(f'sources = "{REPO_ROOT / "configs" / "sources" / "default.toml"}"\n[shards]\nseq_len = "1024"\n')
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "flows.stage", "general", "--config", str(path), "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error: {path}: [shards] seq_len = '1024': expected an integer"
    assert not out.exists()  # nothing ran


# --- one filter policy: configs/stages/base.toml under every stage (issue 23 item 7) -----------------------------


def test_merge_tables_merges_tables_key_by_key_and_replaces_everything_else():
    base = {"filters": {"c4": {"domains": ["web"], "min_words_per_line": 3}, "pii": {}}, "shards": {"seq_len": 4096}}
    override = {"filters": {"c4": {"domains": ["web", "stem"]}}, "shards": {"buckets": [{"name": "a"}]}}
    merged = merge_tables(base, override)
    assert merged == {
        "filters": {"c4": {"domains": ["web", "stem"], "min_words_per_line": 3}, "pii": {}},  # list replaced
        "shards": {"seq_len": 4096, "buckets": [{"name": "a"}]},
    }
    assert base["filters"]["c4"]["domains"] == ["web"] and "buckets" not in base["shards"]  # inputs unchanged


def test_a_stage_file_states_only_what_differs_from_its_base(tmp_path: Path):
    (tmp_path / "base.toml").write_text(
        '[filters.c4]\ndomains = ["web"]\nmin_words_per_line = 3\n[shards]\nseq_len = 4096\nnum_proc = 2\n'
    )
    path = tmp_path / "stage.toml"
    path.write_text(
        'base = "base.toml"\nsources = "x.toml"\n[filters.c4]\nmin_words_per_line = 5\n[shards]\nseq_len = 64\n'
    )
    cfg = load_stage_config("general", path)
    assert cfg.base == tmp_path / "base.toml"
    assert cfg.filters["c4"] == {"domains": ["web"], "min_words_per_line": 5}
    assert cfg.shards == {"seq_len": 64, "num_proc": 2}


@pytest.mark.parametrize(
    "base, stage, file, message",
    [
        ('[shards]\nseq_len = "1024"\n', "", "base.toml", "[shards] seq_len = '1024': expected an integer"),
        ('stage = "general"\n', "", "base.toml", "stage = 'general': a base file holds shared tables only"),
        ('base = "other.toml"\n', "", "base.toml", "base = 'other.toml': a base file holds shared tables only"),
        ("", '[shards]\nseq_len = "1024"\n', "stage.toml", "[shards] seq_len = '1024': expected an integer"),
    ],
)
def test_a_wrong_value_names_the_file_that_holds_it(tmp_path: Path, base, stage, file, message):
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "stage.toml"
    path.write_text(f'base = "base.toml"\nsources = "x.toml"\n{stage}')
    with pytest.raises(ConfigError) as e:
        load_stage_config("general", path)
    assert str(e.value).startswith(f"{tmp_path / file}: {message}"), str(e.value)


def test_a_missing_base_file_is_named(tmp_path: Path):
    path = tmp_path / "stage.toml"
    path.write_text('base = "nowhere.toml"\nsources = "x.toml"\n')
    with pytest.raises(ConfigError, match=r"base = 'nowhere.toml': .*nowhere.toml does not exist"):
        load_stage_config("general", path)


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_applies_the_web_prose_rules_to_stem_or_code(stage):
    # Gopher quality, C4 and FineWeb drop STEM (LaTeX, formulas, tables) and code by design: with them the reasoning
    # stage kept 9 of 715 default-source documents. Every stage takes the shared policy of base.toml.
    cfg = load_stage_config(stage)
    assert cfg.base == STAGES_DIR / "base.toml"
    for name in ("gopher_quality", "c4", "fineweb"):
        assert cfg.filters[name]["domains"] == ["web"], (stage, name)
    assert cfg.filters["gopher_repetition"]["domains"] == ["web", "stem"]
    assert {"gutenberg_boilerplate", "books_quality", "word_blocklist_books"} <= set(cfg.filters)
