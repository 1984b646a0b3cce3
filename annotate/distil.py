"""Distil an annotator's labels into a classifier (`python -m flows.classify train --labels OUT_DIR`).

    card = train_from_annotations("runs/annotations", "educational_value", "models/edu")

Reads `OUT_DIR/annotations/<rubric>.parquet` (annotate/table.py; rows whose fate is `labelled`), takes each labelled
document's text from the annotated run's corpus (the run recorded in `OUT_DIR/annotate.json`, or `run`), and binarises
the ordinal label: positive when `label >= min_label`. FineWeb-Edu (Penedo et al. 2024, arXiv 2406.17557) keeps
documents whose educational score is >= 3 and reports its classifier's F1 at that threshold, so 3 is the default.
The classifier is trained by DCLM's recipe (`scoring.train.train_fasttext`: word bigrams, one thread, a seeded
held-out split); its card gets an `annotations` entry: the table's sha256, the threshold, the count of each label,
and the annotator (model path and weights' sha256), rubric version and sha256 of the rows. The card's held-out
accuracy and AUC are its agreement with the binarised annotator labels on documents it did not train on, and its
`spearman` the rank correlation of its scores with the ordinal labels themselves (per language too).

With `EmbeddingParams` (`--kind embedding`) the ordinal label is learnt as it is, by FineWeb-Edu's recipe
(`scoring.embedding`: a regression head on MiniLM embeddings, the score the predicted label scaled to the rubric's
range); the card's metrics are the same: Spearman against the labels, accuracy and AUC at `min_label`.

A class rubric (`topic`, `format`, `safety`: a string `enum` label) is learnt as it is, by one multi-class fastText
classifier (`scoring.train.train_fasttext_classes`: softmax over the classes labelled, word bigrams, one thread),
WebOrganizer's recipe (Wettig et al. 2025, arXiv 2502.10341, distils its LLM's topic and format labels into
classifiers); its card has the classes, the label counts per split, held-out accuracy and macro-F1 (per language
where a language has enough held-out documents) and the same `annotations` entry (without a threshold). A stage
scores with it one probability per class (`scores['<scorer>.<class>']`, scoring/config.py). With `EmbeddingParams`
a class rubric gets a multinomial logistic-regression head on MiniLM embeddings instead (`scoring.embedding`), with
the same card metrics.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from annotate.rubrics import label_values, load_rubric
from annotate.run import ANNOTATIONS, MARKER
from annotate.sample import read_seeds
from annotate.table import LABELLED
from core.io import file_sha256
from schemas import Document
from scoring.card import read_card, write_card
from scoring.embedding import EmbeddingParams, documents_sha256, train_embedding
from scoring.metrics import ordinal_metrics, per_language
from scoring.texts import LabelledDocuments, fasttext_line
from scoring.train import FastTextParams, held_out, train_fasttext, train_fasttext_classes
from synth.templates import TemplateError

FINEWEB_EDU_MIN_LABEL = 3
FINEWEB_EDU = "FineWeb-Edu's threshold, arXiv 2406.17557"


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
    params: FastTextParams | EmbeddingParams | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Train a classifier on an annotation folder's labels; return its card (see the module docstring).

    Args:
        labels_dir: the `flows.annotate --out` folder.
        rubric: the rubric whose labels are learnt (ordinal, or classes: a multi-class fastText classifier).
        out_dir: the classifier folder.
        run: the annotated run (default: the one `annotate.json` records).
        min_label: the lowest label counted positive (ordinal rubrics).
        seed, heldout_fraction, verify: as `scoring.train.train_fasttext`.
        params: `FastTextParams` (default) or `EmbeddingParams` (an embedding classifier).

    Raises:
        FileNotFoundError: no annotations table; ValueError: no labelled row, a label that is not an integer (an
            ordinal rubric), one side empty (fewer than two classes), or no recorded run.
    """
    labels_dir, out_dir = Path(labels_dir), Path(out_dir)
    table, rows = read_labelled(labels_dir, rubric)
    classes = _is_class_rubric(rubric, rows)
    labels = {r["doc_id"]: r["label"] if classes else _ordinal(table, r["label"]) for r in rows}
    run = Path(run) if run is not None else annotated_run(labels_dir, rubric)
    docs = _labelled_documents(table, run, list(labels))
    if classes:
        card = _train_classes(table, docs, labels, out_dir, rubric, seed, heldout_fraction, params, verify)
    else:
        card = _train_ordinal(table, docs, labels, out_dir, rubric, min_label, seed, heldout_fraction, params, verify)
    card["annotations"] = {
        "table": str(table.resolve()),
        "table_sha256": file_sha256(table),
        "run": str(run.resolve()),
        **({} if classes else {"binarised": f"positive when label >= {min_label} ({FINEWEB_EDU})"}),
        **({} if classes else {"min_label": min_label}),
        "label_counts": {str(k): v for k, v in sorted(Counter(labels.values()).items())},
        "annotator": _distinct(rows, "model", "model_sha256"),
        "rubric": _distinct(rows, "rubric_version", "rubric_sha256"),
        "cost": _annotation_cost(labels_dir, rubric),
    }
    write_card(out_dir, {k: v for k, v in card.items() if k not in ("format", "version")})
    return card


def _train_classes(
    table: Path,
    docs: list[Document],
    labels: dict[str, Any],
    out_dir: Path,
    rubric: str,
    seed: int,
    heldout_fraction: float,
    params: FastTextParams | EmbeddingParams | None,
    verify: bool,
) -> dict[str, Any]:
    """A multi-class classifier of a class rubric's labels (fastText, or a multinomial head on embeddings): the
    documents of each class (with text)."""
    by_class: dict[str, list[Document]] = {}
    for d in docs:
        if fasttext_line(d.text):
            by_class.setdefault(labels[d.id], []).append(d)
    if isinstance(params, EmbeddingParams):
        names = sorted(by_class)
        kept = [d for c in names for d in by_class[c]]
        return train_embedding(
            [(d, float(names.index(labels[d.id]))) for d in kept],
            out_dir,
            rubric,
            inputs={"annotated": [{"source": str(table), "documents": len(kept), "sha256": documents_sha256(kept)}]},
            classes=names,
            seed=seed,
            heldout_fraction=heldout_fraction,
            params=params,
            verify=verify,
        )
    return train_fasttext_classes(
        {c: [LabelledDocuments(f"{table} (label = {c})", tuple(ds))] for c, ds in sorted(by_class.items())},
        out_dir,
        rubric,
        seed=seed,
        heldout_fraction=heldout_fraction,
        params=params,
        verify=verify,
    )


def _train_ordinal(
    table: Path,
    docs: list[Document],
    labels: dict[str, Any],
    out_dir: Path,
    rubric: str,
    min_label: int,
    seed: int,
    heldout_fraction: float,
    params: FastTextParams | EmbeddingParams | None,
    verify: bool,
) -> dict[str, Any]:
    """An ordinal rubric's classifier: an embedding regression head, or fastText on the labels binarised at
    `min_label` (with Spearman against the labels added to its card)."""
    if isinstance(params, EmbeddingParams):
        return train_embedding(
            [(d, float(labels[d.id])) for d in docs if d.text.strip()],
            out_dir,
            rubric,
            inputs={"annotated": [{"source": str(table), "documents": len(docs), "sha256": documents_sha256(docs)}]},
            label_range=_label_range(rubric, labels),
            min_label=min_label,
            seed=seed,
            heldout_fraction=heldout_fraction,
            params=params,
            verify=verify,
        )
    positives = tuple(d for d in docs if labels[d.id] >= min_label)
    negatives = tuple(d for d in docs if labels[d.id] < min_label)
    name = f"{table} (label >= {min_label})"
    train_fasttext(
        [LabelledDocuments(name, positives)],
        [LabelledDocuments(name.replace(">=", "<"), negatives)],
        out_dir,
        rubric,
        seed=seed,
        heldout_fraction=heldout_fraction,
        params=params,
        verify=verify,
    )
    card = read_card(out_dir)
    _add_spearman(card, out_dir, docs, labels, seed, heldout_fraction, min_label)
    return card


def _is_class_rubric(rubric: str, rows: list[dict[str, Any]]) -> bool:
    """Whether the rubric's labels are classes (a string `enum`, as `topic`'s) rather than ordinal scores: by the
    rubric's schema when `load_rubric` finds it, else by the labels (any that is not an integer)."""
    try:
        values = label_values(load_rubric(rubric)) or []
    except TemplateError:
        values = [r["label"] for r in rows]
    return any(not v.lstrip("-").isdigit() for v in values)


def _labelled_documents(table: Path, run: Path, doc_ids: list[str]) -> list[Document]:
    """The labelled documents of the annotated run's corpus, in `doc_ids`' order.

    Raises:
        ValueError: a labelled document that is not in the run (another run was given).
    """
    try:
        seeds = read_seeds(run, doc_ids)
    except KeyError as e:
        raise ValueError(f"{table}: document {e} is not in the corpus of {run}; give the annotated run") from None
    return [Document(id=s.id, text=s.text, source=s.source, domain=s.domain, lang=s.lang) for s in seeds]


def _annotation_cost(labels_dir: Path, rubric: str) -> dict[str, Any] | None:
    """What the labels cost to make (`annotate.json`'s last run of the rubric: tokens and request seconds), carried
    into the card so that a stage report shows it beside the scores; None for a folder from before it was kept."""
    marker = labels_dir / MARKER
    if not marker.is_file():
        return None
    entry = json.loads(marker.read_text(encoding="utf-8")).get("rubrics", {}).get(rubric, {})
    return entry.get("last_run", {}).get("cost")


def _distinct(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """The distinct values of `keys` over the rows (one entry when one annotator / rubric version labelled them)."""
    seen = sorted({tuple(r[k] for k in keys) for r in rows}, key=str)
    return [dict(zip(keys, values)) for values in seen]


def _label_range(rubric: str, labels: dict[str, int]) -> tuple[int, int]:
    """(lowest, highest) label the rubric allows (educational_value: 0, 5); the labels seen when the rubric is
    not one `load_rubric` finds."""
    try:
        values = [int(v) for v in label_values(load_rubric(rubric)) or []]
    except (TemplateError, ValueError):
        values = []
    values = values or list(labels.values())
    return min(values), max(values)


def _add_spearman(
    card: dict[str, Any],
    cls_dir: Path,
    docs: list[Document],
    labels: dict[str, int],
    seed: int,
    heldout_fraction: float,
    min_label: int,
) -> None:
    """Add to a fastText card the Spearman correlation of its held-out scores with the ordinal labels (overall and
    for each language the card has metrics of): the documents `train_fasttext` held out, scored as a stage would."""
    from scoring.scorer import FastTextScorer

    heldout = [d for d in docs if fasttext_line(d.text) and held_out(seed, d, heldout_fraction)]
    scores = FastTextScorer(cls_dir).score([d.text for d in heldout])
    ordinal = [labels[d.id] for d in heldout]
    card["heldout"]["spearman"] = ordinal_metrics(ordinal, scores, min_label)["spearman"]
    by_lang = per_language([d.lang for d in heldout], ordinal, scores, lambda y, s: ordinal_metrics(y, s, min_label))
    for lang, metrics in card["heldout"]["per_language"].items():
        metrics["spearman"] = by_lang.get(lang, {}).get("spearman")
