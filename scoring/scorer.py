"""A trained classifier, loaded from its folder (its model file checked against `card.json`), that scores texts.

`load_classifier(cls_dir)` picks the class by the card's kind: `FastTextScorer` (`model.bin`) or
`scoring.embedding.EmbeddingScorer` (`head.json` on the MiniLM encoder).

The score is the classifier's probability of the positive label, in [0, 1]: the same number `card.json`'s held-out
metrics were computed on, so a threshold read off the card means the same thing in a stage. A multi-class classifier
(a class rubric such as `topic`; its card's `labels` has `classes`) gives one probability per class instead
(`score_classes`), which sum to 1 over the classes it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.card import MODEL_FILE, card_classes, read_card
from scoring.texts import fasttext_line

if TYPE_CHECKING:
    from scoring.embedding import EmbeddingScorer

LABEL_PREFIX = "__label__"  # fastText's mark of a label in a training line
POSITIVE, NEGATIVE = f"{LABEL_PREFIX}positive", f"{LABEL_PREFIX}negative"


def positive_probabilities(model: Any, lines: list[str]) -> list[float]:
    """fastText's probability of the positive label for each one-line text (`fasttext_line`), in order."""
    if not lines:
        return []
    labels, probs = model.predict(lines, k=2)
    # fastText's softmax can overshoot 1 by a rounding step (1.00001): a score stays a probability.
    return [min(1.0, float(p[list(la).index(POSITIVE)])) if POSITIVE in la else 0.0 for la, p in zip(labels, probs)]


def class_probabilities(model: Any, lines: list[str]) -> list[dict[str, float]]:
    """fastText's probability of every class (its label without the prefix) for each one-line text, in order."""
    if not lines:
        return []
    labels, probs = model.predict(lines, k=-1)
    return [
        {la.removeprefix(LABEL_PREFIX): min(1.0, float(p)) for la, p in sorted(zip(ls, ps))}
        for ls, ps in zip(labels, probs)
    ]


def most_probable(probabilities: dict[str, float]) -> str:
    """The class with the highest probability (the first by name among equals, so ties do not depend on order)."""
    return max(sorted(probabilities), key=probabilities.__getitem__)


class FastTextScorer:
    """A fastText classifier folder made by `scoring.train.train_fasttext`.

    Args:
        cls_dir: the folder holding `model.bin` and `card.json`; the model file's sha256 must match the card.
    """

    def __init__(self, cls_dir: Path) -> None:
        import fasttext

        self.cls_dir = Path(cls_dir)
        self.card = read_card(self.cls_dir)
        self._model = fasttext.load_model(str(self.cls_dir / MODEL_FILE))
        self.classes = card_classes(self.card)  # None: a binary classifier

    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability of the positive label of each text, in order (one fastText call for the batch).

        Raises:
            ValueError: a multi-class classifier (it has no positive label: use `score_classes`).
        """
        if self.classes is not None:
            raise ValueError(f"{self.cls_dir}: a multi-class classifier ({self.classes}); use score_classes")
        return positive_probabilities(self._model, [fasttext_line(t) for t in texts])

    def score_classes(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probability of each class of a multi-class classifier for each text, in order (one fastText call)."""
        return class_probabilities(self._model, [fasttext_line(t) for t in texts])


def load_classifier(cls_dir: Path) -> FastTextScorer | EmbeddingScorer:
    """The scorer of a classifier folder, by its card's kind (checked against the card on load).

    Raises:
        scoring.card.CardError: no valid card, or a model file that is not the card's.
    """
    if read_card(Path(cls_dir), verify=False)["kind"] == "embedding":
        from scoring.embedding import EmbeddingScorer

        return EmbeddingScorer(cls_dir)
    return FastTextScorer(cls_dir)
