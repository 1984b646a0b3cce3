"""Stage flows become Prefect deployments, one per stage, with their parameters and schedule."""

from flows.serve import build_deployments


def test_one_deployment_per_stage_with_parameters_and_schedule():
    deps = build_deployments(["general", "long_context"], out_root="/data/runs", cron="0 3 * * *", limit=100)
    assert [d.name for d in deps] == ["general", "long_context"]
    assert deps[1].parameters == {"stage": "long_context", "out": "/data/runs/long_context", "limit": 100}
    assert all("corpusforge" in d.tags for d in deps)
    assert deps[0].schedules and deps[0].schedules[0].schedule.cron == "0 3 * * *"
    assert deps[0].flow_name == "corpusforge-stage"


def test_referenced_files_changes_when_a_listed_file_changes(tmp_path):
    from flows.stage import referenced_files

    words = tmp_path / "words.txt"
    words.write_text("alpha\n")
    cfg = {"word_blocklist": {"lists": {"en": str(words)}}, "langid": {"min_score": 0.5, "languages": ["en"]}}
    before = referenced_files(cfg)
    assert [p for p, _ in before] == [str(words)]
    words.write_text("alpha\nbeta\n")
    assert referenced_files(cfg) != before
