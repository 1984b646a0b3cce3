"""Deployments come from flows/deployments.toml: one per stage plus the trainer, typed, scheduled, limited."""

import pytest

from flows.serve import DeploymentConfigError, build_deployments, load_deployments


def test_every_stage_and_the_trainer_is_a_deployment_with_schedule_retries_and_concurrency():
    deps = {d.name: d for d in build_deployments(out_root="/data/runs", limit=100)}
    assert set(deps) == {"general", "reasoning", "long_context", "train", "synth", "ablate"}
    general = deps["general"]
    assert general.flow_name == "corpusforge-stage"
    assert general.parameters == {"stage": "general", "out": "/data/runs/general", "limit": 100}
    assert general.schedules[0].schedule.cron == "0 2 * * *" and general.schedules[0].schedule.timezone == "UTC"
    assert general.paused is False and general.schedules[0].active is True
    assert general.concurrency_limit == 1 and general.concurrency_options.collision_strategy.value == "ENQUEUE"
    # typed parameters: the schema Prefect enforces for runs started from the UI
    props = general._parameter_openapi_schema.properties
    assert props["limit"]["anyOf"][0]["type"] == "integer" and props["dry_run"]["type"] == "boolean"
    train = deps["train"]
    assert train.flow_name == "corpusforge-train" and train.paused is True and train.schedules[0].active is False
    assert train.parameters == {"stage": "general", "steps": 300, "out": "/data/runs/general"}  # no `limit`
    synth = deps["synth"]
    assert (
        synth.flow_name == "corpusforge-synth"
        and synth.paused is True
        and synth.entrypoint == "flows.synth.synth_flow"
    )
    assert synth.parameters == {
        "from_dir": "runs/general",
        "model": "runs/general/hf",
        "count": 1000,
        "out": "/data/runs/synth",
    }  # no `stage`, no `limit`: not the synth flow's parameters
    assert synth._parameter_openapi_schema.properties["count"]["type"] == "integer"
    ablate = deps["ablate"]
    assert ablate.flow_name == "corpusforge-ablate" and ablate.paused is True
    assert ablate.entrypoint == "flows.ablate.ablate_flow"
    # no `stage`, no `limit`: the ablation's parameters are its command line's
    assert ablate.parameters == {"run": "runs/general", "search": 8, "tokens": 2000000, "out": "/data/runs/ablate"}
    props = ablate._parameter_openapi_schema.properties
    assert props["search"]["type"] == "integer" and {"mixtures", "candidates", "search_over"} <= set(props)
    assert all("corpusforge" in d.tags for d in deps.values())
    # by module: a file-path entrypoint would put flows/ on sys.path, where flows/report.py shadows `report`
    assert general.entrypoint == "flows.stage_flow.stage_flow" and train.entrypoint == "flows.train.train_flow"


def test_overrides_and_only(tmp_path):
    deps = build_deployments(only=["long_context"], cron="*/5 * * * *", paused=True)
    assert [d.name for d in deps] == ["long_context"]
    assert deps[0].schedules[0].schedule.cron == "*/5 * * * *" and deps[0].paused is True
    assert deps[0].parameters["out"] == "runs/long_context"


def test_failed_runs_retry_per_the_config(tmp_path):
    cfg = tmp_path / "d.toml"
    cfg.write_text('[defaults]\nretries = 3\nretry_delay_seconds = 7\n[deployment.general]\ncron = ""\n')
    specs, root = load_deployments(cfg)
    assert root == "runs" and specs[0].cron is None and specs[0].retries == 3
    (dep,) = build_deployments(specs)
    assert not dep.schedules
    from flows.serve import _flow

    flow = _flow("stage").with_options(retries=specs[0].retries, retry_delay_seconds=specs[0].retry_delay_seconds)
    assert flow.retries == 3 and flow.retry_delay_seconds == 7


@pytest.mark.parametrize(
    "text, message",
    [
        ("[deployment.general]\ncorn = '0 1 * * *'\n", "[deployment.general]: unknown key(s) ['corn']"),
        ("[deployment.nightly]\nflow = 'stage'\n", "must be named after a stage"),
        ("[deployment.general]\nflow = 'bake'\n", "flow 'bake' is not one of"),
        ("[deployment.general]\npaused = 'yes'\n", "'paused' must be a bool"),
        ("[deployment.general\n", "not valid TOML"),
    ],
)
def test_a_wrong_deployments_file_is_a_one_line_error(tmp_path, text, message):
    cfg = tmp_path / "d.toml"
    cfg.write_text(text)
    with pytest.raises(DeploymentConfigError) as e:
        load_deployments(cfg)
    assert message in str(e.value) and "\n" not in str(e.value) and str(cfg) in str(e.value)


def test_unknown_only_name_is_an_error():
    with pytest.raises(DeploymentConfigError, match="unknown deployment"):
        build_deployments(only=["nope"])


def test_referenced_files_changes_when_a_listed_file_changes(tmp_path):
    from flows.stage import referenced_files

    words = tmp_path / "words.txt"
    words.write_text("alpha\n")
    cfg = {"word_blocklist": {"lists": {"en": str(words)}}, "langid": {"min_score": 0.5, "languages": ["en"]}}
    before = referenced_files(cfg)
    assert [p for p, _ in before] == [str(words)]
    words.write_text("alpha\nbeta\n")
    assert referenced_files(cfg) != before
