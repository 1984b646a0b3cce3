"""`[mixture.score_buckets]` (Nemotron-CC): each domain's share split over buckets of a scorer's score, each bucket
capped at its own repetitions; unscored documents keep their natural share; shards realise the buckets' budgets."""

from __future__ import annotations

import json

import pytest

from schemas import Document, make_doc_id
from sharding.build import build_stage_shards
from sharding.mixture import MixtureConfig, plan_budget
from tests.sharding.sharding_corpus import write_corpus

BUCKETS = {
    "scorer": "edu",
    "buckets": {
        "high": {"min_score": 0.6, "share": 0.75, "max_repeats": 2.0},
        "low": {"min_score": 0.0, "share": 0.25, "max_repeats": 1.0},
    },
}


def _cells(rows):
    return {(r.source, r.bucket): r for r in rows}


def test_a_domain_splits_over_its_buckets_by_share_and_each_bucket_keeps_its_cap():
    avail = {("web", "crawl", "high"): (10, 100_000), ("web", "crawl", "low"): (90, 900_000)}
    cfg = MixtureConfig.from_dict({"total_tokens": 1_000_000, "score_buckets": BUCKETS})
    rows = _cells(plan_budget(avail, cfg))
    # high wants 750k but may take only 2 passes (200k); low takes the rest up to its one pass (900k)
    assert rows["crawl", "high"].cap == 2.0 and rows["crawl", "high"].budget == 200_000
    assert rows["crawl", "low"].budget == 800_000
    assert rows["crawl", "high"].share == pytest.approx(0.75) and rows["crawl", "low"].share == pytest.approx(0.25)


def test_unscored_documents_keep_their_natural_share_and_a_mixture_without_buckets_is_unchanged():
    avail = {("web", "crawl", "high"): (10, 100_000), ("web", "crawl", "low"): (10, 100_000)}
    avail[("web", "crawl", None)] = (20, 200_000)  # half the domain's tokens carry no score
    rows = _cells(plan_budget(avail, MixtureConfig.from_dict({"score_buckets": BUCKETS})))
    assert rows["crawl", None].share == pytest.approx(0.5)
    assert rows["crawl", "high"].share == pytest.approx(0.375) and rows["crawl", "low"].share == pytest.approx(0.125)
    plain = plan_budget({("web", "crawl"): (40, 400_000)}, MixtureConfig.from_dict({}))
    assert [(r.source, r.bucket, r.budget) for r in plain] == [("crawl", None, 400_000)]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"buckets": BUCKETS["buckets"]}, "needs scorer"),
        ({**BUCKETS, "buckets": {"high": {"min_score": 0.5, "share": 1.0}}}, "lowest bucket's min_score must be 0"),
        ({**BUCKETS, "buckets": {"low": {"min_score": 0.0, "share": -1.0}}}, "share = -1.0: must be >= 0"),
        ({**BUCKETS, "buckets": {"low": {"min_score": 0.0}}}, "min_score and share are required"),
        ({**BUCKETS, "buckets": {"low": {"min_score": 0.0, "share": 1.0, "cap": 2}}}, "cap = 2: unknown key"),
    ],
)
def test_a_bad_bucket_table_names_the_key(table, message):
    with pytest.raises(ValueError, match="mixture.score_buckets") as e:
        MixtureConfig.from_dict({"score_buckets": table})
    assert message in str(e.value)


def test_the_shards_realise_each_buckets_share_and_cap(tmp_path, real_data):
    """300 GSM8K items, a third scored high: the high bucket is asked for 75% of the tokens and may repeat twice."""
    docs = []
    for i, text in enumerate(real_data.stem_math["gsm8k"][:300]):
        doc = Document(make_doc_id("gsm8k", str(i), text), text, "gsm8k", "stem")
        doc.scores = {"edu": 0.9 if i % 3 == 0 else 0.2}
        docs.append(doc)
    corpus = write_corpus(docs, tmp_path / "docs")
    mixture = {"seed": 1, "domains": {"stem": 1.0}, "score_buckets": BUCKETS}
    shards = {"tokenizer": "o200k_harmony", "seq_len": 256}
    build_stage_shards(corpus, tmp_path / "out", "general", mixture, shards)
    manifest = json.loads((tmp_path / "out" / "general" / "manifest.json").read_text())
    rows = {r["bucket"]: r for r in manifest["mixture"]}
    high, low = rows["high"], rows["low"]
    assert (high["docs"], low["docs"]) == (100, 200)
    # The stage budget is the corpus size: high's 75% is more than two passes over it, so it takes its cap and low
    # the rest, up to its one pass.
    assert high["selected_tokens"] == 2 * high["available_tokens"]
    assert low["selected_tokens"] <= low["available_tokens"]
    assert high["selected_tokens"] + low["selected_tokens"] > 0.95 * (
        high["available_tokens"] + low["available_tokens"]
    )


def test_a_stage_whose_buckets_read_a_score_it_does_not_compute_is_one_line_before_work(tmp_path):
    from core.stage_files import ConfigError
    from stage.config import load_stage_config

    stage = tmp_path / "stage.toml"
    stage.write_text(
        'sources = "sources.toml"\n[mixture.score_buckets]\nscorer = "edu"\n'
        "[mixture.score_buckets.buckets.all]\nmin_score = 0.0\nshare = 1.0\n"
    )
    with pytest.raises(ConfigError, match=r"scorer = 'edu': no \[scorers.edu\] in this stage") as e:
        load_stage_config("general", stage)
    assert "\n" not in str(e.value)
