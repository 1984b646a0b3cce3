"""Distil an annotator's labels into a fastText classifier (`python -m flows.classify train --labels OUT_DIR`).

    card = train_from_annotations("runs/annotations", "educational_value", "models/edu")

Reads `OUT_DIR/annotations/<rubric>.parquet` (annotate/table.py; rows whose fate is `labelled`), takes each labelled
document's text from the annotated run's corpus (the run recorded in `OUT_DIR/annotate.json`, or `run`), and binarises
the ordinal label: positive when `label >= min_label`. FineWeb-Edu (Penedo et al. 2024, arXiv 2406.17557) keeps
documents whose educational score is >= 3 and reports its classifier's F1 at that threshold, so 3 is the default.
The classifier is trained by DCLM's recipe (`scoring.train.train_fasttext`: word bigrams, one thread, a seeded
held-out split); its card gets an `annotations` entry: the table's sha256, the threshold, the count of each label,
and the annotator (model path and weights' sha256), rubric version and sha256 of the rows. The card's held-out
accuracy and AUC are its agreement with the binarised annotator labels on documents it did not train on.

A class rubric (`topic`, `format`, `safety`: a string label) is not binarised here: it is refused with a one-line
error (a one-vs-rest classifier per class is not built yet).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from annotate.run import ANNOTATIONS, MARKER
from annotate.sample import read_seeds
from annotate.table import LABELLED
from core.io import file_sha256
from schemas import Document
from scoring.card import read_card, write_card
from scoring.texts import LabelledDocuments
from scoring.train import FastTextParams, train_fasttext

FINEWEB_EDU_MIN_LABEL = 3


def annotated_run(labels_dir: Path, rubric: str) -> Path:
    """The run whose documents `labels_dir` labelled with `rubric`, as `annotate.json` records it.

    Raises:
        ValueError: no record of the run (an annotation folder written before the run was recorded): give --from.
    """
    marker = Path(labels_dir) / MARKER
    try:
        run = json.loads(marker.read_text())["rubrics"][rubric]["run"]
    except (OSError, ValueError, KeyError):
        raise ValueError(
            f"{marker}: no run recorded for rubric {rubric!r}; give the annotated run with --from"
        ) from None
    return Path(run)


def read_labelled(labels_dir: Path, rubric: str) -> tuple[Path, list[dict[str, Any]]]:
    """(the table's path, its labelled rows) of `labels_dir/annotations/<rubric>.parquet`.

    Raises:
        FileNotFoundError: no such table (names the command that writes it).
        ValueError: no labelled row.
    """
    import pyarrow.parquet as pq

    path = Path(labels_dir) / ANNOTATIONS / f"{rubric}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no annotations of rubric {rubric!r}; write them with "
            f"`python -m flows.annotate --from RUN_DIR --rubric {rubric} --out {labels_dir}`"
        )
    rows = [r for r in pq.read_table(path).to_pylist() if r["fate"] == LABELLED]
    if not rows:
        raise ValueError(f"{path}: no labelled row (every request failed or none was answered)")
    return path, rows


def _ordinal(path: Path, label: str) -> int:
    try:
        return int(label)
    except ValueError:
        raise ValueError(
            f"{path}: label {label!r} is not an ordinal score; --labels binarises ordinal rubrics such as "
            "educational_value only"
        ) from None


def train_from_annotations(
    labels_dir: Path | str,
    rubric: str,
    out_dir: Path | str,
    *,
    run: Path | str | None = None,
    min_label: int = FINEWEB_EDU_MIN_LABEL,
    seed: int = 0,
    heldout_fraction: float = 0.2,
    params: FastTextParams | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Train a fastText classifier on an annotation folder's labels; return its card (see the module docstring).

    Args:
        labels_dir: the `flows.annotate --out` folder.
        rubric: the rubric whose labels are learnt (an ordinal one).
        out_dir: the classifier folder.
        run: the annotated run (default: the one `annotate.json` records).
        min_label: the lowest label counted positive.
        seed, heldout_fraction, params, verify: as `scoring.train.train_fasttext`.

    Raises:
        FileNotFoundError: no annotations table; ValueError: no labelled row, a label that is not an integer, one
            side empty, or no recorded run.
    """
    labels_dir = Path(labels_dir)
    table, rows = read_labelled(labels_dir, rubric)
    labels = {r["doc_id"]: _ordinal(table, r["label"]) for r in rows}
    run = Path(run) if run is not None else annotated_run(labels_dir, rubric)
    try:
        seeds = read_seeds(run, list(labels))
    except KeyError as e:
        raise ValueError(f"{table}: document {e} is not in the corpus of {run}; give the annotated run") from None
    docs = [Document(id=s.id, text=s.text, source=s.source, domain=s.domain, lang=s.lang) for s in seeds]
    positives = tuple(d for d in docs if labels[d.id] >= min_label)
    negatives = tuple(d for d in docs if labels[d.id] < min_label)
    name = f"{table} (label >= {min_label})"
    train_fasttext(
        [LabelledDocuments(name, positives)],
        [LabelledDocuments(name.replace(">=", "<"), negatives)],
        Path(out_dir),
        rubric,
        seed=seed,
        heldout_fraction=heldout_fraction,
        params=params,
        verify=verify,
    )
    card = read_card(Path(out_dir))
    card["annotations"] = {
        "table": str(table.resolve()),
        "table_sha256": file_sha256(table),
        "run": str(run.resolve()),
        "binarised": f"positive when label >= {min_label} (FineWeb-Edu's threshold, arXiv 2406.17557)",
        "min_label": min_label,
        "label_counts": {str(k): v for k, v in sorted(Counter(labels.values()).items())},
        "annotator": _distinct(rows, "model", "model_sha256"),
        "rubric": _distinct(rows, "rubric_version", "rubric_sha256"),
    }
    write_card(Path(out_dir), {k: v for k, v in card.items() if k not in ("format", "version")})
    return card


def _distinct(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """The distinct values of `keys` over the rows (one entry when one annotator / rubric version labelled them)."""
    seen = sorted({tuple(r[k] for k in keys) for r in rows}, key=str)
    return [dict(zip(keys, values)) for values in seen]
