"""flows.annotate without an engine: the stratified sample, the rubrics, the request bytes and the annotations table
against a recording OpenAI-compatible endpoint, and the one-line errors before any work. The real engine with
SmolLM2 is tests/synth/test_synth_vllm.py's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from annotate.rubrics import available_rubrics, label_values, load_rubric
from annotate.run import annotate
from annotate.sample import stratified_sample
from synth.templates import TemplateError
from tests.synth.conftest import FakeEngine, write_corpus


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run: 30 documents over 3 domains x 2 languages (6 strata) and its corpus marker."""
    root = tmp_path / "general"
    write_corpus(root / "corpus")
    (root / "corpus" / "_SUCCESS.json").write_text("{}")
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder for provenance only: the recording endpoint never reads it."""
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"weights")
    return d


@pytest.fixture
def engine():
    def reply(body: dict) -> tuple[int, dict]:
        score = len(body["prompt"]) % 6  # any valid label; the request decides it
        text = json.dumps({"justification": "clear", "label": score})
        return 200, {"choices": [{"text": text, "finish_reason": "stop"}], "usage": {"completion_tokens": 9}}

    e = FakeEngine(reply)
    yield e
    e.close()


def test_the_sample_covers_every_stratum_before_repeating_one_and_is_seeded(run_dir: Path):
    strata = Counter((d.domain, d.lang, d.source) for d in stratified_sample(run_dir, 6, seed=0))
    assert len(strata) == 6 and set(strata.values()) == {1}  # 3 domains x (en, fr): one each
    twelve = stratified_sample(run_dir, 12, seed=0)
    assert [d.id for d in twelve[:6]] == [d.id for d in stratified_sample(run_dir, 6, seed=0)]  # a prefix
    assert set(Counter((d.domain, d.lang) for d in twelve).values()) == {2}
    assert [d.id for d in stratified_sample(run_dir, 12, seed=0)] == [d.id for d in twelve]
    assert [d.id for d in stratified_sample(run_dir, 12, seed=1)] != [d.id for d in twelve]
    everything = stratified_sample(run_dir, 100, seed=0)
    assert len(everything) == 30 and len({d.id for d in everything}) == 30
    assert all(d.text and d.source == "src" for d in everything)


def test_shipped_rubrics_load_with_their_labels(tmp_path: Path):
    assert available_rubrics() == ["educational_value", "format", "safety", "topic"]
    assert label_values(load_rubric("educational_value")) == ["0", "1", "2", "3", "4", "5"]
    assert len(label_values(load_rubric("topic"))) == 24 and len(label_values(load_rubric("format"))) == 24
    assert "none" in label_values(load_rubric("safety"))
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nversion = 1\nformat = "chatml"\nprompt = "x"\n[output]\nkind = "text"\n')
    with pytest.raises(TemplateError, match="answers in JSON"):
        load_rubric(str(bad))
    with pytest.raises(TemplateError, match="unknown rubric 'edu'"):
        load_rubric("edu")


def test_same_inputs_and_seed_give_the_same_requests_and_rows(run_dir, model_dir, engine, tmp_path: Path):
    rubric = load_rubric("educational_value")
    first = annotate(run_dir, rubric, model_dir, tmp_path / "a", count=8, servers=[engine.url], progress=False)
    sent_first = sorted(engine.bodies)
    engine.bodies.clear()
    annotate(run_dir, rubric, model_dir, tmp_path / "b", count=8, servers=[engine.url], progress=False)
    assert sorted(engine.bodies) == sent_first and len(sent_first) == 8
    body = json.loads(sent_first[0])
    assert body["temperature"] == 0.0 and body["structured_outputs"]["json"] == rubric.schema
    assert body["prompt"].startswith("<|im_start|>system\n") and "Extract:" in body["prompt"]
    assert first["labelled"] == 8 and first["fates"] == {"labelled": 8}
    cost = first["cost"]  # the endpoint's usage counts summed over the table (this one reports 9 completion tokens)
    assert (cost["requests"], cost["prompt_tokens"], cost["completion_tokens"]) == (8, 0, 72)
    assert 0 < cost["seconds_per_document"] <= cost["request_seconds"]

    from flows.query import connect

    rows = {}
    for name in ("a", "b"):
        con = connect(tmp_path / name)
        rows[name] = con.execute(
            "SELECT doc_id, rubric, rubric_version, rubric_sha256, label, model, model_sha256, sampling, "
            "finish_reason, fate FROM annotations"
        ).fetchall()
    assert rows["a"] == rows["b"] and len(rows["a"]) == 8
    assert len({r[0] for r in rows["a"]}) == 8  # eight documents
    for _doc_id, name, version, sha, label, model, model_sha, sampling, finish, fate in rows["a"]:
        assert (name, version, sha, fate, finish) == ("educational_value", 1, rubric.sha256, "labelled", "stop")
        assert label in {"0", "1", "2", "3", "4", "5"} and model == str(model_dir.resolve()) and len(model_sha) == 64
        assert json.loads(sampling)["seed"] >= 0
    # The same folder again: every request is in the journal, nothing is sent.
    engine.bodies.clear()
    again = annotate(run_dir, rubric, model_dir, tmp_path / "a", count=8, servers=[engine.url], progress=False)
    assert engine.bodies == [] and again["skipped"] == 8 and again["labelled"] == 8
    assert again["cost"] == cost  # resumed requests keep their cost


def test_an_answer_that_breaks_the_schema_keeps_its_fate_and_no_label(run_dir, model_dir, tmp_path: Path):
    answers = iter(['{"label": 9}', "not json", '{"label": "none"}'])

    def reply(body: dict) -> tuple[int, dict]:
        return 200, {"choices": [{"text": next(answers), "finish_reason": "stop"}], "usage": {}}

    engine = FakeEngine(reply)
    try:
        out = tmp_path / "out"
        annotate(run_dir, load_rubric("safety"), model_dir, out, 3, servers=[engine.url], max_concurrency=1)
    finally:
        engine.close()
    from flows.query import connect

    got = connect(out).execute("SELECT fate, label FROM annotations ORDER BY fate").fetchall()
    assert got == [("labelled", "none"), ("schema_violation", None), ("unparsable", None)]


@pytest.mark.parametrize(
    ("extra", "config", "message"),
    [
        (["--rubric", "edu"], None, "unknown rubric 'edu'"),
        ([], None, "no rubric: pass --rubric"),
        (["--rubric", "topic"], "[annotate]\ncount = 0\n", "count = 0: must be >= 1"),
        (["--rubric", "topic"], '[annotate]\nservers = ["localhost:8000"]\n', "is not a base URL"),
        (["--rubric", "topic"], "[annotate]\nmodels = 1\n", "models = 1: unknown key"),
        (["--rubric", "topic"], "[annotate]\nserver = { port = 1 }\n", "server.port: unknown key"),
        (["--rubric", "topic"], "[synth]\ncount = 1\n", "unknown tables ['synth']"),
    ],
)
def test_bad_input_is_one_line_before_any_work(run_dir, tmp_path, capsys, extra, config, message):
    from flows.annotate import main

    argv = ["--from", str(run_dir), "--out", str(tmp_path / "out"), *extra]
    if config is not None:
        (tmp_path / "a.toml").write_text(config)
        argv += ["--config", str(tmp_path / "a.toml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_no_corpus_or_no_exported_model_names_the_command(tmp_path, capsys, monkeypatch, run_dir):
    from flows.annotate import main
    from synth import models

    assert main(["--from", str(tmp_path / "nowhere"), "--rubric", "topic", "--out", str(tmp_path / "o")]) == 2
    assert "python -m flows.stage general" in capsys.readouterr().err
    monkeypatch.setattr(models, "BUILT_MODELS_DIR", tmp_path / "built")
    assert main(["--from", str(run_dir), "--rubric", "topic", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bash scripts/bootstrap.sh" in err and err.count("\n") == 1
