"""`CLS_DIR/card.json`: what a trained classifier is, how it was made and how well it does on held-out text.

Fields: `format`, `version`, `rubric`, `kind` ("fasttext" or "embedding"), `labels` (the positive and negative
label; `{"classes": [...]}` for a multi-class classifier of a class rubric such as `topic`), `label_counts` (train
and held-out, per label), `heldout` (accuracy, AUC, Spearman for ordinal labels, macro-F1 and per-class F1 for class
labels, per language), `model_sha256` (of the model file: `model.bin`, or an embedding classifier's `head.json`, whose card also
names its `encoder` and that file's sha256), `training_data_sha256` (of the training file, in `data/`), `inputs` (the SOURCES given and the
sha256 of the documents read from each), `params` (every fastText argument, the seed and thread count) and
`reproducible` (same inputs give the same model bytes, and why). A scorer refuses a folder whose model file
does not match its card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.io import atomic_write_json, file_sha256

CARD_FORMAT = "corpusforge-classifier"
CARD_VERSION = 1
CARD_FILE = "card.json"
MODEL_FILE = "model.bin"
MODEL_FILES = {"fasttext": MODEL_FILE, "embedding": "head.json"}  # kind -> its model file in the folder
KINDS = tuple(MODEL_FILES)


class CardError(ValueError):
    """A classifier folder without a valid card, or whose model file does not match it."""


def write_card(cls_dir: Path, card: dict[str, Any]) -> Path:
    """Write `card` (format and version added) as `cls_dir/card.json`, atomically."""
    path = cls_dir / CARD_FILE
    atomic_write_json(path, {"format": CARD_FORMAT, "version": CARD_VERSION, **card})
    return path


def read_card(cls_dir: Path, verify: bool = True) -> dict[str, Any]:
    """The card of a classifier folder, checked: format, version, kind, and (with `verify`) the model file's sha256.

    Raises:
        CardError: no card, another format or version, an unknown kind, or a model file that is not the card's.
    """
    path = Path(cls_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(
            f"{cls_dir}: no {CARD_FILE}; train one with `python -m flows.classify train` (the shipped ones: "
            "`python -m scoring.shipped build`, which scripts/bootstrap.sh runs)"
        ) from None
    except json.JSONDecodeError as e:
        raise CardError(f"{path}: not valid JSON: {e}") from e
    if card.get("format") != CARD_FORMAT or card.get("version") != CARD_VERSION:
        raise CardError(
            f"{path}: not a {CARD_FORMAT} card version {CARD_VERSION} "
            f"(format {card.get('format')!r}, version {card.get('version')!r})"
        )
    if card.get("kind") not in KINDS:
        raise CardError(f"{path}: kind {card.get('kind')!r} is unknown; known: {list(KINDS)}")
    model = Path(cls_dir) / MODEL_FILES[card["kind"]]
    if verify:
        if not model.is_file():
            raise CardError(f"{cls_dir}: {model.name} is missing")
        if file_sha256(model) != card.get("model_sha256"):
            raise CardError(f"{model}: sha256 differs from its card's model_sha256; retrain or restore the file")
    return card


def card_classes(card: dict[str, Any]) -> list[str] | None:
    """The classes a multi-class classifier scores (its card's `labels.classes`); None for a binary or ordinal one."""
    labels = card.get("labels")
    return list(labels["classes"]) if isinstance(labels, dict) and "classes" in labels else None


def provenance(card: dict[str, Any]) -> dict[str, Any]:
    """What a stage report says of a classifier: its kind and rubric, what it learnt from (an LLM's annotations, with
    the annotator, the label count and what the labels cost, or reference text, with the sets' names) and its
    held-out AUC (a multi-class classifier: its classes and held-out macro-F1 instead)."""
    out: dict[str, Any] = {"kind": card.get("kind"), "rubric": card.get("rubric")}
    notes = card.get("annotations")
    if notes:
        out["trained_on"] = "annotations"
        out["annotator"] = [a.get("model") for a in notes.get("annotator", [])]
        out["labels"] = sum(notes.get("label_counts", {}).values())
        out["annotation_cost"] = notes.get("cost")
    else:
        out["trained_on"] = "reference text"
        out["reference_sets"] = [d.get("name") for d in card.get("training_data", [])]
    out["heldout_auc"] = (card.get("heldout") or {}).get("auc")
    classes = card_classes(card)
    if classes is not None:
        out["classes"] = classes
        out["heldout_macro_f1"] = card["heldout"].get("macro_f1")
    return out
