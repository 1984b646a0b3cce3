"""Held-out metrics of a classifier: accuracy at a threshold and ROC AUC (binary labels), Spearman's rank correlation
(ordinal labels, e.g. educational_value 0-5), accuracy and macro-F1 (class labels, e.g. topic), overall and per
language."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

MIN_PER_LANGUAGE = 20  # held-out examples a language needs before its own metrics mean anything


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: the probability that a random positive scores above a random negative (ties
    count one half; the Mann-Whitney U statistic over n_pos * n_neg). None when one class is absent."""
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):  # average ranks over runs of tied scores
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1
        rank_sum += mean_rank * sum(1 for k in order[i : j + 1] if labels[k])
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def binary_metrics(labels: Sequence[bool], scores: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """`{"count", "positives", "accuracy", "auc"}` of scores (probability of the positive class) against labels."""
    correct = sum(1 for y, s in zip(labels, scores) if (s >= threshold) == y)
    auc = roc_auc(labels, scores)
    return {
        "count": len(labels),
        "positives": sum(1 for y in labels if y),
        "accuracy": round(correct / len(labels), 6) if labels else None,
        "auc": round(auc, 6) if auc is not None else None,
    }


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of `values`, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    """Spearman's rank correlation: the Pearson correlation of the average ranks (ties share a rank), in [-1, 1].
    None with fewer than two examples or when labels or scores are all equal (no ranking to compare)."""
    if len(labels) < 2:
        return None
    x, y = average_ranks(labels), average_ranks(scores)
    mean = (len(x) + 1) / 2  # the mean of average ranks is always (n + 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(x, y))
    var_x, var_y = sum((a - mean) ** 2 for a in x), sum((b - mean) ** 2 for b in y)
    if var_x == 0 or var_y == 0:
        return None
    return cov / (var_x * var_y) ** 0.5


def ordinal_metrics(labels: Sequence[float], scores: Sequence[float], min_label: float) -> dict[str, Any]:
    """`{"count", "spearman", "positives", "auc"}` of scores against ordinal labels: the rank correlation, and the
    AUC of the labels binarised at `min_label` (FineWeb-Edu's keep-at-3 decision)."""
    rho = spearman(labels, scores)
    binary = [y >= min_label for y in labels]
    auc = roc_auc(binary, scores)
    return {
        "count": len(labels),
        "spearman": round(rho, 6) if rho is not None else None,
        "positives": sum(binary),
        "auc": round(auc, 6) if auc is not None else None,
    }


def class_metrics(labels: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """`{"count", "accuracy", "macro_f1", "per_class": {class: {"support", "precision", "recall", "f1"}}}` of the
    predicted classes (the most probable one of each document) against the labels.

    Macro-F1 is the unweighted mean of each class's F1 over the classes present in the labels or the predictions
    (scikit-learn's default set), so a rare class counts as much as a common one (WebOrganizer, arXiv 2502.10341,
    reports its classifiers' macro-F1); a class that neither appears nor is predicted is not counted as a zero.
    """
    classes = sorted(set(labels) | set(predicted))
    per_class: dict[str, dict[str, Any]] = {}
    for c in classes:
        hits = sum(1 for y, p in zip(labels, predicted) if y == p == c)
        support, guessed = sum(1 for y in labels if y == c), sum(1 for p in predicted if p == c)
        precision, recall = (hits / guessed if guessed else 0.0), (hits / support if support else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"support": support, "precision": round(precision, 6), "recall": round(recall, 6)}
        per_class[c]["f1"] = round(f1, 6)
    correct = sum(1 for y, p in zip(labels, predicted) if y == p)
    return {
        "count": len(labels),
        "accuracy": round(correct / len(labels), 6) if labels else None,
        "macro_f1": round(sum(m["f1"] for m in per_class.values()) / len(classes), 6) if classes else None,
        "per_class": per_class,
    }


def per_language(
    langs: Sequence[str | None],
    labels: Sequence[Any],
    scores: Sequence[Any],
    metrics: Callable[[list[Any], list[Any]], dict[str, Any]] = binary_metrics,
) -> dict[str, Any]:
    """`metrics` (default `binary_metrics`; `scores` may be predicted classes for `class_metrics`) of each language with at least MIN_PER_LANGUAGE held-out examples (AUC
    stays None where the language has one class only); a document without a language counts as "und"."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lang in enumerate(langs):
        groups[lang or "und"].append(i)
    return {
        lang: metrics([labels[i] for i in idx], [scores[i] for i in idx])
        for lang, idx in sorted(groups.items())
        if len(idx) >= MIN_PER_LANGUAGE
    }
