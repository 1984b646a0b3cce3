"""FineWeb-Edu's classifier recipe (Penedo et al. 2024, arXiv 2406.17557, section 3.2): a frozen sentence encoder's
embeddings of each document and a small linear head trained on them.

FineWeb-Edu embedded the first 512 tokens of each annotated document with a frozen encoder and trained a linear
regression head on Llama-3-70B's 0-5 scores, then kept documents whose rounded score is >= 3. Here the encoder is
all-MiniLM-L6-v2 (`scoring.encoder`: mean-pooled, unit length, the first `max_tokens` word pieces, torch on CPU) and
the head is

- for binary labels (reference text, `--positives` / `--negatives`): a logistic regression; the score is the
  probability of the positive label;
- for ordinal labels (an annotator's `educational_value`, `--labels`): a ridge regression of the label, and the
  score is the predicted label clipped to the rubric's range and scaled to [0, 1] (`(pred - lo) / (hi - lo)`), so
  that every scorer's score lies in [0, 1]; FineWeb-Edu's keep (rounded score >= 3 of 0-5) is
  `score >= (3 - 0.5) / 5 = 0.5`, which the card records as `keep_min_score`;
- for class labels (a class rubric such as `topic`, `--labels`): a multinomial logistic regression; the scores are
  the probability of each class (`score_classes`; the card's metrics: accuracy and macro-F1 of the most probable).

Both heads are fitted by scikit-learn's deterministic solvers (lbfgs, Cholesky) with BLAS held to one thread, on a
split that holds out a seeded share of the documents (a hash of the seed and the document id, as
`scoring.train`). `CLS_DIR/head.json` holds the weights (exact decimal floats), the task, the encoder's sha256 and
`max_tokens`, so a scorer reads documents as training did; `card.json` its metrics (see `scoring.card`).

Reproducible: one torch thread and batches fixed by token count give the same embeddings, and the solvers draw no
random numbers, so the same documents give the same `head.json` bytes; `verify=True` embeds and fits a second time
and compares. NOTE: a scorer batches a stage's documents differently from training, which can move a score in the
seventh decimal place (padding changes the shapes the matrix products see); the card's metrics are unaffected.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.io import atomic_write_bytes, file_sha256
from schemas import Document
from scoring.card import MODEL_FILES, card_classes, read_card, write_card
from scoring.encoder import BATCH_SIZE, DEFAULT_MAX_TOKENS, SentenceEncoder, require_encoder
from scoring.metrics import binary_metrics, class_metrics, ordinal_metrics, per_language
from scoring.scorer import most_probable
from scoring.texts import LabelledDocuments, read_documents
from scoring.train import held_out

log = logging.getLogger(__name__)

HEAD_FILE = MODEL_FILES["embedding"]
TRAIN_FILE, HELDOUT_FILE = "data/train.jsonl", "data/heldout.jsonl"


@dataclass(frozen=True)
class EmbeddingParams:
    """How documents are embedded and the head fitted.

    Args:
        max_tokens: word pieces of each document embedded (its opening; the encoder's own limit is 256).
        threads: torch CPU threads for the encoder (1: reproducible and polite on shared machines).
        l2: the head's L2 penalty (ridge `alpha`; logistic regression `C = 1 / l2`).
    """

    max_tokens: int = DEFAULT_MAX_TOKENS
    threads: int = 1
    l2: float = 1.0

    def __post_init__(self) -> None:
        if not 2 < self.max_tokens <= 512:
            raise ValueError(f"max_tokens = {self.max_tokens!r}: must be in (2, 512]")
        if self.threads < 1:
            raise ValueError(f"threads = {self.threads!r}: must be >= 1")
        if not self.l2 > 0:
            raise ValueError(f"l2 = {self.l2!r}: must be > 0")


def read_sides(
    positives: Sequence[str | Path | LabelledDocuments], negatives: Sequence[str | Path | LabelledDocuments]
) -> tuple[list[tuple[Document, float]], dict[str, list[dict[str, Any]]]]:
    """(documents labelled 1 / 0, the card's `inputs`: per side, per source, the documents read and their sha256).

    Raises:
        ValueError: a side without any document with text.
    """
    examples: list[tuple[Document, float]] = []
    inputs: dict[str, list[dict[str, Any]]] = {}
    for side, label, sources in (("positive", 1.0, positives), ("negative", 0.0, negatives)):
        inputs[side] = []
        for source in sources:
            docs = source.documents if isinstance(source, LabelledDocuments) else read_documents(source)
            kept = [d for d in docs if d.text.strip()]
            examples += [(d, label) for d in kept]
            name = source.name if isinstance(source, LabelledDocuments) else str(source)
            inputs[side].append({"source": name, "documents": len(kept), "sha256": documents_sha256(kept)})
        if not any(i["documents"] for i in inputs[side]):
            raise ValueError(f"no document with text in the {side} sources {list(map(str, sources))}")
    return examples, inputs


def documents_sha256(docs: Sequence[Document]) -> str:
    digest = hashlib.sha256()
    for d in docs:
        digest.update(f"{d.id}\0{d.text}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def train_embedding(
    examples: Sequence[tuple[Document, float]],
    out_dir: Path,
    rubric: str,
    *,
    inputs: dict[str, Any],
    label_range: tuple[int, int] | None = None,
    min_label: float | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    heldout_fraction: float = 0.2,
    params: EmbeddingParams | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Embed, split, fit and evaluate; return the card (also written to `out_dir/card.json`).

    Args:
        examples: (document, label): 1.0 / 0.0 for binary labels, the ordinal label with `label_range`, the index
            of the class in `classes` with `classes`.
        out_dir: the classifier folder (`head.json`, `card.json`, `data/`); created.
        rubric: what the score means, recorded in the card.
        inputs: what the documents were read from (the card's `inputs`).
        label_range: (lowest, highest) label of an ordinal rubric: a regression head; None: binary labels.
        min_label: with `label_range`, the lowest label kept (the card's AUC and `keep_min_score`).
        classes: the class names of a class rubric: a multinomial head (the classes seen in training are learnt).
        seed: the held-out split.
        heldout_fraction: share of documents held out for the card's metrics, in (0, 1).
        verify: embed and fit a second time and record whether `head.json`'s bytes are the same.

    Raises:
        ValueError: a fraction outside (0, 1), or one label (binary) / one distinct label (ordinal) left to train on.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction = {heldout_fraction!r}: must be in (0, 1)")
    if label_range is not None and (min_label is None or not label_range[0] < label_range[1]):
        raise ValueError(f"label_range = {label_range!r}, min_label = {min_label!r}: need lo < hi and a min_label")
    if classes is not None and label_range is not None:
        raise ValueError("classes and label_range: a class head or an ordinal one, not both")
    params = params or EmbeddingParams()
    out_dir = Path(out_dir)
    train = [(d, y) for d, y in examples if not held_out(seed, d, heldout_fraction)]
    heldout = [(d, y) for d, y in examples if held_out(seed, d, heldout_fraction)]
    if len({y for _, y in train}) < 2:
        raise ValueError(f"one label only left to train on after the held-out split: {sorted({y for _, y in train})}")
    encoder = SentenceEncoder(params.max_tokens, params.threads)
    head = _fit(encoder, train, label_range, params, classes)
    head_bytes = _head_bytes(head)
    same_bytes = _head_bytes(_fit(encoder, train, label_range, params, classes)) == head_bytes if verify else None
    if same_bytes is False:
        log.warning("%s: a second embedding and fit of the same documents gave other head bytes", out_dir)
    atomic_write_bytes(out_dir / HEAD_FILE, head_bytes)
    for path, part in ((TRAIN_FILE, train), (HELDOUT_FILE, heldout)):
        lines = (json.dumps({"id": d.id, "lang": d.lang, "label": y, "text": d.text}) + "\n" for d, y in part)
        atomic_write_bytes(out_dir / path, "".join(lines).encode("utf-8", "surrogatepass"))
    scores = head_scores(head, encoder.embed([d.text for d, _ in heldout])).tolist() if heldout else []
    card = {
        "rubric": rubric,
        "kind": "embedding",
        **_labels_and_metrics(train, heldout, scores, label_range, min_label, classes, head.get("classes")),
        "encoder": {
            **encoder.info,
            "pooling": "mean over tokens, L2-normalised",
            "max_tokens": params.max_tokens,
            "batch_size": BATCH_SIZE,
        },
        "model_sha256": file_sha256(out_dir / HEAD_FILE),
        "training_data_sha256": file_sha256(out_dir / TRAIN_FILE),
        "heldout_data_sha256": file_sha256(out_dir / HELDOUT_FILE),
        "inputs": inputs,
        "params": {**asdict(params), "head": head["head"], "seed": seed, "heldout_fraction": heldout_fraction},
        "reproducible": {
            "same_inputs_same_bytes": same_bytes,
            "why": "one torch thread and batches fixed by token count (the same embeddings), deterministic solvers "
            "(lbfgs, Cholesky) with BLAS on one thread, and a held-out split fixed by a hash of seed and document id",
        },
    }
    write_card(out_dir, card)
    return card


def _labels_and_metrics(
    train: list[tuple[Document, float]],
    heldout: list[tuple[Document, float]],
    scores: list[float],
    label_range: tuple[int, int] | None,
    min_label: float | None,
    classes: Sequence[str] | None = None,
    trained: list[str] | None = None,
) -> dict[str, Any]:
    """The card's `labels`, `label_counts` and `heldout` entries (`classes`, `trained`: a class head's names and
    those it learnt, see `_class_labels_and_metrics`)."""
    if classes is not None and trained is not None:
        return _class_labels_and_metrics(train, heldout, scores, list(classes), trained)
    langs, labels = [d.lang for d, _ in heldout], [y for _, y in heldout]
    if label_range is None:
        names = {1.0: "positive", 0.0: "negative"}
        binary = [y == 1.0 for y in labels]
        return {
            "labels": {"positive": "positive", "negative": "negative"},
            "label_counts": _label_counts(train, heldout, lambda y: names[y]),
            "heldout": {**binary_metrics(binary, scores), "per_language": per_language(langs, binary, scores)},
        }
    assert min_label is not None, "an ordinal head needs min_label"
    lo, hi = label_range
    keep_min_score = (min_label - 0.5 - lo) / (hi - lo)  # FineWeb-Edu keeps round(prediction) >= min_label

    def metrics(ys: list[float], ss: list[float]) -> dict[str, Any]:
        kept = [s >= keep_min_score for s in ss]
        correct = sum(1 for y, k in zip(ys, kept) if (y >= min_label) == k)
        return {**ordinal_metrics(ys, ss, min_label), "accuracy": round(correct / len(ys), 6) if ys else None}

    return {
        "labels": {"ordinal": [lo, hi], "min_label": min_label, "keep_min_score": keep_min_score},
        "label_counts": _label_counts(train, heldout, lambda y: str(int(y))),
        "heldout": {**metrics(labels, scores), "per_language": per_language(langs, labels, scores, metrics)},
    }


def _class_labels_and_metrics(
    train: list[tuple[Document, float]],
    heldout: list[tuple[Document, float]],
    scores: list[list[float]],
    names: list[str],
    trained: list[str],
) -> dict[str, Any]:
    """A class head's card entries: the labels are indices into `names`, each score row the probabilities of the
    `trained` classes (the head's rows), the prediction the most probable (`scoring.scorer.most_probable`)."""
    truth = [names[int(y)] for _, y in heldout]
    predicted = [most_probable(dict(zip(trained, row))) for row in scores]
    langs = [d.lang for d, _ in heldout]
    return {
        "labels": {"classes": trained},
        **({"untrained": sorted(set(names) - set(trained))} if len(trained) < len(names) else {}),
        "label_counts": _label_counts(train, heldout, lambda y: names[int(y)]),
        "heldout": {
            **class_metrics(truth, predicted),
            "per_language": per_language(langs, truth, predicted, class_metrics),
        },
    }


def _label_counts(
    train: list[tuple[Document, float]], heldout: list[tuple[Document, float]], name: Callable[[float], str]
) -> dict[str, dict[str, int]]:
    """Documents per label name in each part, the highest label first."""
    return {
        part: {name(y): n for y, n in sorted(Counter(y for _, y in rows).items(), reverse=True)}
        for part, rows in (("train", train), ("heldout", heldout))
    }


def _fit(
    encoder: SentenceEncoder,
    train: list[tuple[Document, float]],
    label_range: tuple[int, int] | None,
    params: EmbeddingParams,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Embed the training documents and fit the head (logistic or ridge regression) with BLAS on one thread."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression, Ridge
    from threadpoolctl import threadpool_limits

    x = encoder.embed([d.text for d, _ in train]).astype(np.float64)
    y = np.array([label for _, label in train], dtype=np.float64)
    where = {"encoder_sha256": encoder.info["sha256"], "max_tokens": encoder.max_tokens}
    if classes is not None:
        return {**_class_head(x, y, classes, params.l2), **where}
    with threadpool_limits(limits=1):
        if label_range is None:
            model = LogisticRegression(C=1.0 / params.l2, solver="lbfgs", max_iter=1000).fit(x, y)
            weight, bias, kind = model.coef_[0], model.intercept_[0], "logistic_regression"
        else:
            model = Ridge(alpha=params.l2, solver="cholesky").fit(x, y)
            weight, bias, kind = model.coef_, model.intercept_, "ridge_regression"
    return {
        "head": kind,
        "task": "binary" if label_range is None else "ordinal",
        "label_range": list(label_range) if label_range is not None else None,
        "encoder_sha256": encoder.info["sha256"],
        "max_tokens": encoder.max_tokens,
        "bias": float(bias),
        "weight": [float(w) for w in weight],
    }


def _class_head(x: Any, y: Any, classes: Sequence[str], l2: float) -> dict[str, Any]:
    """A multinomial logistic regression (softmax over the classes seen in `y`, indices into `classes`; lbfgs fits
    the multinomial loss for three or more). With two classes scikit-learn keeps one row, the second's logit against
    the first: it is written as two rows, the first zero, whose softmax is that sigmoid."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        model = LogisticRegression(C=1.0 / l2, solver="lbfgs", max_iter=1000).fit(x, y)
    weight, bias = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        weight, bias = np.vstack([np.zeros_like(weight[0]), weight[0]]), np.array([0.0, bias[0]])
    return {
        "head": "multinomial_logistic_regression",
        "task": "classes",
        "classes": [classes[int(c)] for c in model.classes_],
        "label_range": None,
        "bias": [float(b) for b in bias],
        "weight": [[float(w) for w in row] for row in weight],
    }


def _head_bytes(head: dict[str, Any]) -> bytes:
    return (json.dumps(head, sort_keys=True, indent=1) + "\n").encode()


def head_scores(head: dict[str, Any], vectors: Any) -> Any:
    """Scores in [0, 1] of embeddings [N, dim] under a head: the positive probability (binary), the predicted label
    scaled to the rubric's range (ordinal), or [N, classes] probabilities of the head's classes (a softmax)."""
    import numpy as np

    if head["task"] == "classes":
        logits = vectors.astype(np.float64) @ np.asarray(head["weight"], dtype=np.float64).T + head["bias"]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    z = vectors.astype(np.float64) @ np.asarray(head["weight"], dtype=np.float64) + head["bias"]
    if head["task"] == "binary":
        return 1.0 / (1.0 + np.exp(-z))
    lo, hi = head["label_range"]
    return np.clip((z - lo) / (hi - lo), 0.0, 1.0)


class EmbeddingScorer:
    """An embedding classifier folder made by `train_embedding`.

    Args:
        cls_dir: the folder holding `head.json` and `card.json`; the head's sha256 must match the card, and the
            installed encoder must be the one it was trained on.
        threads: torch CPU threads for the encoder.

    Raises:
        CardError: the folder's card or head does not check out.
        core.assets.AssetError: the encoder asset is missing, altered or not the one the head was trained on (one
            line naming the command that installs it).
    """

    def __init__(self, cls_dir: Path, threads: int = 1) -> None:
        self.cls_dir = Path(cls_dir)
        self.card = read_card(self.cls_dir)
        self._head = json.loads((self.cls_dir / HEAD_FILE).read_text())
        require_encoder(self._head["encoder_sha256"])
        self._encoder = SentenceEncoder(self._head["max_tokens"], threads)
        self.classes = card_classes(self.card)  # None: one score per text

    def score(self, texts: Sequence[str]) -> list[float]:
        """The score of each text, in order (one encoder pass over the batch).

        Raises:
            ValueError: a class head (it has one score per class: use `score_classes`).
        """
        if self.classes is not None:
            raise ValueError(f"{self.cls_dir}: a multi-class classifier ({self.classes}); use score_classes")
        if not texts:
            return []
        return [float(s) for s in head_scores(self._head, self._encoder.embed(texts))]

    def score_classes(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probability of each class of a class head for each text, in order (one encoder pass)."""
        if not texts:
            return []
        rows = head_scores(self._head, self._encoder.embed(texts))
        return [{c: float(p) for c, p in sorted(zip(self._head["classes"], row))} for row in rows]
