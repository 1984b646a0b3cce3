"""The reference-mode classifier (DCLM's recipe, `python -m flows.classify train`) on real text: held-out metrics
in its card, the same model bytes from the same inputs, and one-line errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.io import file_sha256
from flows.classify import main
from scoring.card import read_card
from scoring.metrics import roc_auc
from scoring.scorer import FastTextScorer
from tests.scoring.conftest import TEST_TRAIN_ARGS


def test_card_shows_held_out_metrics_that_separate_math_from_plays(math_classifier):
    card = read_card(math_classifier)  # also checks model.bin against model_sha256
    heldout = card["heldout"]
    # Measured here: AUC 0.99999, accuracy 0.999 on 2,064 held-out documents. The bounds say "clearly learned",
    # and a classifier that reads the labels backwards or scores at random (AUC 0.5) fails them.
    assert heldout["auc"] >= 0.95
    assert heldout["accuracy"] >= 0.9
    assert heldout["per_language"]["en"]["auc"] >= 0.95  # both sources declare lang = "en"
    counts = card["label_counts"]
    assert (
        heldout["count"] == sum(counts["heldout"].values()) and heldout["positives"] == counts["heldout"]["positive"]
    )
    inputs = {side: sum(i["documents"] for i in v) for side, v in card["inputs"].items()}
    assert inputs == {side: counts["train"][side] + counts["heldout"][side] for side in ("positive", "negative")}
    assert 0.1 < counts["heldout"]["positive"] / inputs["positive"] < 0.3  # heldout_fraction 0.2
    assert card["rubric"] == "worked_math" and card["kind"] == "fasttext"
    assert card["params"]["thread"] == 1 and card["params"]["word_ngrams"] == 2
    assert card["training_data_sha256"] == file_sha256(math_classifier / "data" / "train.txt")
    assert card["reproducible"]["same_inputs_same_bytes"] is True


def test_scorer_gives_the_scores_the_card_was_measured_on(math_classifier):
    """The stage's scorer reads the folder as the card's held-out metrics did: its scores of the held-out file give
    the card's AUC, and they are probabilities."""
    card = read_card(math_classifier)
    rows = (math_classifier / "data" / "heldout.txt").read_text(encoding="utf-8").splitlines()
    labels = [row.startswith(card["labels"]["positive"] + " ") for row in rows]
    scores = FastTextScorer(math_classifier).score([row.split(" ", 1)[1] for row in rows])
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert round(roc_auc(labels, scores), 6) == card["heldout"]["auc"]
    assert sum((s >= 0.5) == y for s, y in zip(scores, labels)) / len(rows) == pytest.approx(
        card["heldout"]["accuracy"]
    )


def test_same_inputs_give_the_same_model_bytes(math_classifier, reference_sources, tmp_path):
    positives, negatives = reference_sources
    args = [
        "train",
        "--positives",
        str(positives),
        "--negatives",
        str(negatives),
        "--rubric",
        "worked_math",
        *TEST_TRAIN_ARGS,
        "--no-verify",
    ]
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "model.bin").read_bytes() == (math_classifier / "model.bin").read_bytes()
    assert main([*args, "--out", str(tmp_path / "seed1"), "--seed", "1"]) == 0  # another split and order
    assert file_sha256(tmp_path / "seed1" / "model.bin") != file_sha256(math_classifier / "model.bin")
    card = json.loads((tmp_path / "again" / "card.json").read_text())
    assert card["reproducible"]["same_inputs_same_bytes"] is None  # --no-verify: not checked, and says so


def test_bad_arguments_are_one_line_errors_before_any_training(tmp_path, capsys, reference_sources):
    positives, _ = reference_sources
    not_sources = tmp_path / "notes.txt"
    not_sources.write_text("hello\n")
    for negatives, message in (
        (tmp_path / "missing.toml", "no such sources file or run folder"),
        (not_sources, "expected a sources file"),
    ):
        code = main(
            [
                "train",
                "--positives",
                str(positives),
                "--negatives",
                str(negatives),
                "--rubric",
                "x",
                "--out",
                str(tmp_path / "cls"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "cls" / "model.bin").exists()


def test_a_model_file_that_is_not_its_cards_is_refused(math_classifier, tmp_path):
    import shutil

    from scoring.card import CardError

    copy = Path(shutil.copytree(math_classifier, tmp_path / "copy"))
    (copy / "model.bin").write_bytes((copy / "model.bin").read_bytes()[:-1] + b"\x00")
    with pytest.raises(CardError, match="sha256 differs"):
        FastTextScorer(copy)
