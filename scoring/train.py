"""DCLM's classifier recipe (Li et al. 2024, arXiv 2406.11794, section 4.4): a fastText supervised classifier with
word bigrams that tells positive text (DCLM: instruction and explanation text) from negative text (raw web).

`train_fasttext` reads the SOURCES of each side (`scoring.texts`), holds out a seeded share of the documents
(chosen by a hash of the seed and the document id, so the split does not depend on the order of the sources),
writes the training file (shuffled with the seed) and the held-out file under `CLS_DIR/data/`, trains with one
thread, and writes `CLS_DIR/model.bin` and `CLS_DIR/card.json` (see `scoring.card`). `train_fasttext_classes` is
the same recipe over more than two labels (a class rubric such as `topic`; held-out accuracy and macro-F1).

Reproducible: with one thread fastText's SGD is sequential and its random generator is seeded (`seed`), so the
same training file and arguments give the same model bytes; `verify=True` trains a second time and compares.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.io import atomic_write_bytes, file_sha256
from schemas import Document
from scoring.card import MODEL_FILE, write_card
from scoring.metrics import binary_metrics, class_metrics, per_language
from scoring.scorer import (
    LABEL_PREFIX,
    NEGATIVE,
    POSITIVE,
    class_probabilities,
    most_probable,
    positive_probabilities,
)
from scoring.texts import LabelledDocuments, fasttext_line, read_documents

log = logging.getLogger(__name__)

TRAIN_FILE, HELDOUT_FILE = "data/train.txt", "data/heldout.txt"
CLASS_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # a class name: one fastText label token, and a score key's suffix


@dataclass(frozen=True)
class FastTextParams:
    """fastText `train_supervised` arguments (its own names in the card). Defaults: DCLM's bigrams (wordNgrams 2)
    and learning rate; a hashed n-gram table of 200k rows and 64 dimensions keeps `model.bin` near 60 MB."""

    dim: int = 64
    epoch: int = 5
    lr: float = 0.1
    word_ngrams: int = 2
    min_count: int = 2
    bucket: int = 200_000

    def __post_init__(self) -> None:
        for name in ("dim", "epoch", "word_ngrams", "min_count", "bucket"):
            if getattr(self, name) < 1:
                raise ValueError(f"fastText {name} = {getattr(self, name)!r}: must be >= 1")
        if not 0 < self.lr <= 10:
            raise ValueError(f"fastText lr = {self.lr!r}: must be in (0, 10]")


def train_fasttext(
    positives: list[str | Path | LabelledDocuments],
    negatives: list[str | Path | LabelledDocuments],
    out_dir: Path,
    rubric: str,
    *,
    seed: int = 0,
    heldout_fraction: float = 0.2,
    params: FastTextParams | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Train and evaluate a binary fastText classifier; return its card (also written to `out_dir/card.json`).

    Args:
        positives, negatives: SOURCES (sources files or finished run folders) or documents already read, per label.
        out_dir: the classifier folder (`model.bin`, `card.json`, `data/`); created.
        rubric: what the score means (`educational_value`, `edu`, ...), recorded in the card.
        seed: the held-out split, the training file's order and fastText's own seed.
        heldout_fraction: share of each side's documents held out for the card's metrics, in (0, 1).
        verify: train a second time from the same file and record whether the model bytes are the same.

    Raises:
        ValueError: no document on one side, a fraction outside (0, 1), or nothing left to train on.
    """
    sides = {POSITIVE: positives, NEGATIVE: negatives}
    model, split, made = _fit_sides(sides, Path(out_dir), params, seed, heldout_fraction, verify)
    labels = [la == POSITIVE for la, _, _ in split.heldout]
    scores = positive_probabilities(model, [line for _, _, line in split.heldout])
    card = {
        "rubric": rubric,
        "kind": "fasttext",
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "label_counts": _label_counts(split),
        "heldout": {
            **binary_metrics(labels, scores),
            "per_language": per_language([h[1] for h in split.heldout], labels, scores),
        },
        **made,
    }
    write_card(Path(out_dir), card)
    return card


def train_fasttext_classes(
    classes: dict[str, list[str | Path | LabelledDocuments]],
    out_dir: Path,
    rubric: str,
    *,
    seed: int = 0,
    heldout_fraction: float = 0.2,
    params: FastTextParams | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Train and evaluate a multi-class fastText classifier (one label per class, softmax over them: WebOrganizer's
    topic and format classifiers, arXiv 2502.10341, on an annotator's class labels); return its card.

    The same recipe as `train_fasttext` (word bigrams, one thread, the seeded split); the card's `labels` is
    `{"classes": [...]}`, the classes the model learnt, and its held-out metrics are accuracy and macro-F1 of the
    most probable class (`scoring.metrics.class_metrics`). A class whose every document was held out cannot be
    learnt: it is left out of `classes` and named in `untrained` (its held-out documents count as errors).

    Args:
        classes: class name -> SOURCES or documents already read of that class. A name is a fastText label and a
            score key (`<scorer>.<class>`): letters, digits, `_` and `-`.
        out_dir, rubric, seed, heldout_fraction, params, verify: as `train_fasttext`.

    Raises:
        ValueError: fewer than two classes, a bad class name, a class without a document with text, or fewer than
            two classes left to train on.
    """
    bad = [c for c in classes if not CLASS_RE.match(c)]
    if bad or len(classes) < 2:
        raise ValueError(
            f"classes {sorted(classes)}: need two or more, each of letters, digits, _ and - (a fastText label)"
        )
    sides = {LABEL_PREFIX + c: sources for c, sources in sorted(classes.items())}
    model, split, made = _fit_sides(sides, Path(out_dir), params, seed, heldout_fraction, verify, every_label=False)
    trained = sorted({line.split(" ", 1)[0].removeprefix(LABEL_PREFIX) for line in split.train})
    truth = [la.removeprefix(LABEL_PREFIX) for la, _, _ in split.heldout]
    predicted = [most_probable(p) for p in class_probabilities(model, [line for _, _, line in split.heldout])]
    card = {
        "rubric": rubric,
        "kind": "fasttext",
        "labels": {"classes": trained},
        **({"untrained": sorted(set(classes) - set(trained))} if len(trained) < len(classes) else {}),
        "label_counts": _label_counts(split),
        "heldout": {
            **class_metrics(truth, predicted),
            "per_language": per_language([h[1] for h in split.heldout], truth, predicted, class_metrics),
        },
        **made,
    }
    write_card(Path(out_dir), card)
    return card


def _fit_sides(
    sides: dict[str, list[str | Path | LabelledDocuments]],
    out_dir: Path,
    params: FastTextParams | None,
    seed: int,
    heldout_fraction: float,
    verify: bool,
    every_label: bool = True,
) -> tuple[Any, _Split, dict[str, Any]]:
    """Read and split the documents of each label, write the files, train (twice with `verify`): (the model, the
    split, the card entries every fastText card has: sha256s, inputs, params, reproducibility).

    Raises:
        ValueError: a label left nothing to train on by the split (`every_label`), or fewer than two labels left.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction = {heldout_fraction!r}: must be in (0, 1)")
    params = params or FastTextParams()
    split = _split_sources(sides, seed, heldout_fraction)
    train_path, heldout_path = _write_split(out_dir, split, seed)
    untrained = [la.removeprefix(LABEL_PREFIX) for la in sides if not any(t.startswith(la + " ") for t in split.train)]
    if (untrained and every_label) or len(sides) - len(untrained) < 2:
        raise ValueError(
            f"no {', '.join(untrained)} document left to train on after the held-out split "
            f"(heldout_fraction = {heldout_fraction})"
        )
    model = _train(train_path, out_dir / MODEL_FILE, params, seed)
    model_sha256 = file_sha256(out_dir / MODEL_FILE)
    same_bytes = _retrain_gives_same_bytes(out_dir, train_path, params, seed, model_sha256) if verify else None
    return (
        model,
        split,
        {
            "model_sha256": model_sha256,
            "training_data_sha256": file_sha256(train_path),
            "heldout_data_sha256": file_sha256(heldout_path),
            "inputs": {la.removeprefix(LABEL_PREFIX): v for la, v in split.inputs.items()},
            "params": {
                **asdict(params),
                "loss": "softmax",
                "thread": 1,
                "seed": seed,
                "heldout_fraction": heldout_fraction,
            },
            "reproducible": {
                "same_inputs_same_bytes": same_bytes,
                "why": "one thread (fastText's SGD is then sequential), each training in a fresh process, and a fixed "
                "seed for fastText's random generator, the held-out split (a hash of seed and document id) and the "
                "training file's order",
            },
        },
    )


def _label_counts(split: _Split) -> dict[str, dict[str, int]]:
    """Documents per label (without fastText's prefix) in the training and the held-out part."""
    labels = list(split.inputs)
    return {
        "train": {
            la.removeprefix(LABEL_PREFIX): sum(1 for t in split.train if t.startswith(la + " ")) for la in labels
        },
        "heldout": {la.removeprefix(LABEL_PREFIX): sum(1 for h in split.heldout if h[0] == la) for la in labels},
    }


@dataclass
class _Split:
    """The documents of both sides as fastText lines: `train` ("__label__x text"), `heldout` (label, lang, text),
    and per side, per source, how many documents were read and a sha256 of them (for the card)."""

    train: list[str] = field(default_factory=list)
    heldout: list[tuple[str, str | None, str]] = field(default_factory=list)
    inputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _split_sources(
    sides: dict[str, list[str | Path | LabelledDocuments]], seed: int, heldout_fraction: float
) -> _Split:
    """Read every side's sources once, each document to the training or the held-out part (a hash of seed and id).

    Raises:
        ValueError: a side without any document with text.
    """
    split = _Split()
    for label, sources in sides.items():
        split.inputs[label] = []
        for source in sources:
            docs_hash, count = hashlib.sha256(), 0
            documents = source.documents if isinstance(source, LabelledDocuments) else read_documents(source)
            for doc in documents:
                line = fasttext_line(doc.text)
                if not line:
                    continue
                docs_hash.update(f"{doc.id}\0{line}\n".encode("utf-8", "surrogatepass"))
                count += 1
                if held_out(seed, doc, heldout_fraction):
                    split.heldout.append((label, doc.lang, line))
                else:
                    split.train.append(f"{label} {line}")
            name = source.name if isinstance(source, LabelledDocuments) else str(source)
            split.inputs[label].append({"source": name, "documents": count, "sha256": docs_hash.hexdigest()})
        if not any(i["documents"] for i in split.inputs[label]):
            raise ValueError(f"no document with text in the {label.removeprefix('__label__')} sources {sources}")
    return split


def _write_split(out_dir: Path, split: _Split, seed: int) -> tuple[Path, Path]:
    """The training file (shuffled: SGD over one label and then the other would learn the last) and the held-out
    file, written atomically."""
    random.Random(seed).shuffle(split.train)
    train_path, heldout_path = out_dir / TRAIN_FILE, out_dir / HELDOUT_FILE
    atomic_write_bytes(train_path, "".join(f"{line}\n" for line in split.train).encode("utf-8", "surrogatepass"))
    atomic_write_bytes(
        heldout_path, "".join(f"{la} {line}\n" for la, _, line in split.heldout).encode("utf-8", "surrogatepass")
    )
    return train_path, heldout_path


def _retrain_gives_same_bytes(
    out_dir: Path, train_path: Path, params: FastTextParams, seed: int, model_sha256: str
) -> bool:
    """Train a second time from the same file (in a fresh process) and compare the model bytes."""
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        _train(train_path, Path(tmp) / MODEL_FILE, params, seed)
        same_bytes = file_sha256(Path(tmp) / MODEL_FILE) == model_sha256
    if not same_bytes:
        log.warning("%s: a second training from the same file gave other model bytes", out_dir)
    return same_bytes


def held_out(seed: int, doc: Document, fraction: float) -> bool:
    """Whether `doc` is in the held-out share `fraction`: a hash of the seed and its id, so the split depends on
    neither the order nor the other documents (every classifier kind splits this way)."""
    digest = hashlib.blake2b(f"{seed}\0{doc.id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def _train(train_path: Path, model_path: Path, params: FastTextParams, seed: int) -> Any:
    """Train with one thread in a fresh process, save to `model_path` through a temporary name; return the model
    loaded here.

    NOTE: a second `train_supervised` in one process is not reproducible with fasttext-numpy2-wheel 0.9.2 (measured
    here: the second model's bytes differ from the first's, and later ones fail with "Encountered NaN"), while each
    fresh process gives the same bytes every time. So each training gets its own process.
    """
    import fasttext

    from core.paths import REPO_ROOT
    from pipeline.orphans import parent_death_guard

    job = json.dumps([str(train_path), str(model_path), asdict(params), seed])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    code = "import json, sys; from scoring.train import _train_here; _train_here(*json.loads(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, job], env=env, capture_output=True, text=True, preexec_fn=parent_death_guard()
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"fastText training on {train_path} failed (exit {done.returncode}): {tail}")
    return fasttext.load_model(str(model_path))


def _train_here(train_path: str, model_path: str, params: dict[str, Any], seed: int) -> None:
    import fasttext

    model = fasttext.train_supervised(
        input=train_path,
        dim=params["dim"],
        epoch=params["epoch"],
        lr=params["lr"],
        wordNgrams=params["word_ngrams"],
        minCount=params["min_count"],
        bucket=params["bucket"],
        loss="softmax",
        thread=1,
        seed=seed,
        verbose=0,
    )
    tmp = Path(model_path).with_name(f".{Path(model_path).name}.tmp-{os.getpid()}")
    model.save_model(str(tmp))
    os.replace(tmp, model_path)
