"""`[synth.route]`: each seed goes through the templates of its score bucket (low scores to `rephrase`, high ones to
question/answer and textbook templates); a seed without the score through `[synth] templates`; bad routes are one
line before any work."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.stage_files import ConfigError
from pipeline.layout import RunLayout
from schemas import DOCUMENT_SCHEMA
from stage.config import SynthConfig, load_stage_config
from synth.step import run_synth_step

ROUTE = {
    "scorer": "edu",
    "buckets": [
        {"min_score": 0.5, "templates": ["stem_qa", "textbook_section"]},
        {"min_score": 0.0, "templates": ["rephrase"]},
    ],
}


def _scored_corpus(root: Path) -> dict[str, float | None]:
    """40 web and stem documents; every fifth has no score, the others 0.0 to 0.9. Returns id -> score."""
    rows, scores = [], {}
    for i in range(40):
        doc_id, score = f"doc{i:03d}", None if i % 5 == 0 else (i % 10) / 10
        scores[doc_id] = score
        rows.append(
            {
                "id": doc_id,
                "text": f"Document {i} explains how a lever lifts a heavy load with a small force. " * 3,
                "source": "src",
                "domain": "web" if i % 2 else "stem",
                "lang": "en",
                "scores": None if score is None else [("edu", score)],
            }
        )
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), root / "part-0.parquet")
    return scores


def _synth(fake_model: Path, **extra) -> SynthConfig:
    table = {"model": str(fake_model), "count": 40, "templates": ["instruction_response"], "servers": ["http://x"]}
    return SynthConfig.from_table("stage.toml: [synth]", {**table, **extra}, Path.cwd())


def test_each_seed_goes_through_its_score_buckets_templates(tmp_path, fake_model):
    scores = _scored_corpus(tmp_path / "docs")
    layout = RunLayout(tmp_path / "run")
    step = run_synth_step(_synth(fake_model, route=ROUTE), layout, lambda s: s, tmp_path / "docs")
    seen = {}
    for req in step.requests():
        score = scores[req.seed.id]
        want = (
            {"instruction_response"}
            if score is None
            else {"rephrase"}
            if score < 0.5
            else {"stem_qa", "textbook_section"}
        )
        assert req.template.name in want, (req.seed.id, score, req.template.name)
        seen[req.template.name] = seen.get(req.template.name, 0) + 1
    assert set(seen) == {"instruction_response", "rephrase", "stem_qa", "textbook_section"}
    unrouted = run_synth_step(_synth(fake_model), layout, lambda s: s, tmp_path / "docs")
    assert {r.template.name for r in unrouted.requests()} == {"instruction_response"}
    assert step.fingerprint() != unrouted.fingerprint()  # the routes decide the requests: they are in the fingerprint


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"buckets": ROUTE["buckets"]}, "needs scorer"),
        ({**ROUTE, "buckets": [{"min_score": 0.3, "templates": ["rephrase"]}]}, "lowest min_score must be 0"),
        ({**ROUTE, "buckets": [{"min_score": 0.0, "templates": ["nope"]}]}, "unknown template 'nope'"),
        ({**ROUTE, "buckets": [{"min_score": 0.0, "templates": "rephrase"}]}, "templates = 'rephrase'"),
    ],
)
def test_a_bad_route_is_one_line(fake_model, route, message):
    with pytest.raises(ConfigError) as e:
        _synth(fake_model, route=route)
    assert message in str(e.value) and "[synth" in str(e.value) and "\n" not in str(e.value)


def test_a_route_over_a_score_the_stage_does_not_compute_is_refused(tmp_path, fake_model):
    stage = tmp_path / "stage.toml"
    stage.write_text(
        f'sources = "sources.toml"\n[synth]\nmodel = "{fake_model}"\ncount = 4\n[synth.route]\nscorer = "edu"\n'
        '[[synth.route.buckets]]\nmin_score = 0.0\ntemplates = ["rephrase"]\n'
    )
    with pytest.raises(ConfigError, match=r"\[synth.route\] scorer = 'edu': no \[scorers.edu\] in this stage"):
        load_stage_config("general", stage)
