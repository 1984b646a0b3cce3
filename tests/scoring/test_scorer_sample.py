"""`sample` in a `[scorers.<name>]` table (scoring/config.py): a fixed share of the documents, chosen by a hash of
each id, is scored (the same ones in any order and batching, so at any worker count); the others get no key in
`scores`, and the `score_thirds` view and the report's histograms count the scored ones; the model is loaded only when
a sampled document arrives; a bad share or filter mode is one line before any work."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from filters.base import run_chain
from filters.scorer import ScorerFilter
from report.scores import collect_scores, model_rows
from report.views import SCORE_THIRDS_VIEW
from schemas import Document
from scoring.card import CardError
from scoring.config import ScorerConfig
from scoring.shipped import educational_value_dir, is_current


@pytest.fixture(scope="module")
def classifier(request) -> Path:
    """The shipped classifier that set-up built (nothing to train here), else the session's trained one (~5 s)."""
    built = educational_value_dir()
    return built if is_current(built) else request.getfixturevalue("math_classifier")


def _docs(n: int) -> list[Document]:
    texts = ["Three apples and two pears make five fruits.", "Wherefore art thou Romeo? Deny thy father."]
    return [Document(id=f"doc{i:05d}", text=texts[i % 2], source="s", domain="web", lang="en") for i in range(n)]


def test_the_sample_is_a_share_of_the_ids_and_does_not_depend_on_order():
    config = ScorerConfig("edu", Path("unused"), "0" * 64, sample=0.2)
    ids = [f"{i:08x}" for i in range(20_000)]
    chosen = {i for i in ids if config.in_sample(i)}
    assert abs(len(chosen) / len(ids) - 0.2) < 0.015  # binomial sd 0.003
    assert chosen == {i for i in reversed(ids) if config.in_sample(i)}
    assert {i for i in ids if ScorerConfig("edu", Path("unused"), "0" * 64).in_sample(i)} == set(ids)
    assert chosen < {i for i in ids if ScorerConfig("edu", Path("unused"), "0" * 64, sample=0.5).in_sample(i)}


def test_only_sampled_documents_get_a_key_at_any_batching(classifier, tmp_path):
    table = {"model": str(classifier), "mode": "annotate", "sample": 0.5}
    config = ScorerConfig.from_table("t: [scorers.edu]", "edu", table, tmp_path)
    assert config.fingerprint()["sample"] == 0.5
    scored = []
    for batch_size in (1, 7, 256):  # units of other sizes, as other worker counts give
        docs = _docs(40)
        kept = list(run_chain(docs, [ScorerFilter(config)], [], batch_size=batch_size))
        assert kept == docs  # annotate mode keeps every document, sampled or not
        scored.append({d.id: d.scores["edu"] for d in docs if d.scores})
        assert all(not d.scores for d in docs if d.id not in scored[-1])
    assert scored[0] == scored[1] == scored[2]
    assert set(scored[0]) == {d.id for d in _docs(40) if config.in_sample(d.id)} and 5 < len(scored[0]) < 35


def test_the_model_is_loaded_only_when_a_sampled_document_arrives():
    """A folder that is no model: nothing fails until a document in the sample is scored (a worker whose units hold
    no sampled document never pays for the load)."""
    config = ScorerConfig("edu", Path("no-such-model"), "0" * 64, sample=0.3)
    docs = _docs(40)
    outside = [d for d in docs if not config.in_sample(d.id)]
    step = ScorerFilter(config)
    assert list(run_chain(outside, [step], [])) == outside and not any(d.scores for d in outside)
    with pytest.raises(CardError, match="no-such-model"):
        step.filter_batch([next(d for d in docs if config.in_sample(d.id))])


def test_score_thirds_and_the_report_count_the_scored_documents_only():
    con = duckdb.connect()
    rows = [(f"d{i}", "en", {"edu": 0.5, **({"ppl": i / 12} if i % 2 else {})}) for i in range(12)]
    con.execute(
        "CREATE TABLE docs (id VARCHAR, domain VARCHAR, source VARCHAR, lang VARCHAR, scores MAP(VARCHAR, DOUBLE))"
    )
    con.executemany("INSERT INTO docs VALUES (?, 'web', 's', ?, ?)", rows)
    con.execute(SCORE_THIRDS_VIEW)
    thirds = con.execute(
        "SELECT bucket, count(*) FROM score_thirds WHERE scorer = 'ppl' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert thirds == [("head", 2), ("middle", 2), ("tail", 2)]  # the 6 scored documents, not 12
    section = collect_scores(
        con, {"scorers": [{"name": "ppl", "mode": "annotate", "kind": "perplexity", "sample": 0.5}]}
    )
    assert {s["name"]: s["docs"] for s in section["scorers"]} == {"edu": 12, "ppl": 6}
    # A perplexity scorer is binned by log10 of the perplexity (0 to 4 in 20 bins): perplexities 12, 4, 2.4, 1.7,
    # 1.3 and 1.1 fall in bins 5, 3, 1, 1, 0, 0; a classifier's score on [0, 1] (0.5: bin 10).
    ppl, edu = (next(s for s in section["scorers"] if s["name"] == n) for n in ("ppl", "edu"))
    assert ppl["axis"] == "log10_perplexity" and "axis" not in edu
    assert ppl["by_domain"]["web"] == [2, 2, 0, 1, 0, 1] + [0] * 14
    assert edu["by_domain"]["web"] == [0] * 10 + [12] + [0] * 9
    assert model_rows(section)[0][:3] == ["ppl", "annotate (sample 50%)", "perplexity"]  # why it scored only some


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"sample": 0.0}, r"sample = 0\.0: the share of documents scored, in \(0, 1\]"),
        ({"sample": 1.5}, r"sample = 1\.5: the share"),
        ({"sample": "a tenth"}, r"sample"),
        (
            {"mode": "filter", "min_score": 0.5, "sample": 0.5},
            r'sample = 0\.5: mode = "filter" judges every document; sample needs mode = "annotate"',
        ),
        ({"sample_max": 0}, r'sample_max = 0: documents scored, >= 1, with mode = "annotate"'),
        ({"mode": "filter", "min_score": 0.5, "sample_max": 5}, r'sample_max = 5: .*with mode = "annotate"'),
    ],
)
def test_a_bad_sample_is_one_line(table, message, classifier, tmp_path):
    with pytest.raises(ValueError, match=message) as e:
        ScorerConfig.from_table("t: [scorers.edu]", "edu", {**table, "model": str(classifier)}, tmp_path)
    assert "\n" not in str(e.value)


def test_sample_max_keeps_the_smallest_hashes_of_the_run_whatever_its_order():
    """`sample_max`: at most N documents of a run, the same ones in any order; the share still applies first, other
    domains do not count, and the cutoff keys the step's fingerprint (a grown input rescores)."""
    from scoring.sample import id_hash, with_sample_cutoffs

    capped = ScorerConfig("ppl", Path("unused"), "0" * 64, sample=0.5, sample_max=10, domains=("web",))
    ids = [f"{i:08x}" for i in range(400)]
    docs = [(i, "web" if n % 4 else "code") for n, i in enumerate(ids)]  # a quarter is code: not counted
    (cut,) = with_sample_cutoffs((capped,), docs)
    (cut_reversed,) = with_sample_cutoffs((capped,), list(reversed(docs)))
    web = [i for i, d in docs if d == "web"]  # the scorer's domains: its filter is applied to no other document
    chosen = {i for i in web if cut.in_sample(i)}
    web_in_share = sorted((id_hash(i), i) for i in web if id_hash(i) < 0.5)
    assert chosen == {i for _, i in web_in_share[:10]} == {i for i in web if cut_reversed.in_sample(i)}
    assert cut.fingerprint()["sample_cutoff"] == web_in_share[9][0] and "sample_cutoff" not in capped.fingerprint()
    # A run with fewer candidates than the cap: no cutoff, the share alone decides.
    (small,) = with_sample_cutoffs((capped,), docs[:12])
    assert small.sample_cutoff is None and small == capped
    # The report's Scorer models row says both limits.
    section = {"models": [{"name": "ppl", "mode": "annotate", "kind": "perplexity", "sample": 0.03, "sample_max": 64}]}
    assert model_rows(section)[0][1] == "annotate (sample 3%, at most 64)"
