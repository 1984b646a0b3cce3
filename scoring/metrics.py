"""Held-out metrics of a classifier: accuracy at a threshold and ROC AUC (binary labels), Spearman's rank correlation
(ordinal labels, e.g. educational_value 0-5), overall and per language."""

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


def per_language(
    langs: Sequence[str | None],
    labels: Sequence[Any],
    scores: Sequence[float],
    metrics: Callable[[list[Any], list[float]], dict[str, Any]] = binary_metrics,
) -> dict[str, Any]:
    """`metrics` (default `binary_metrics`) of each language with at least MIN_PER_LANGUAGE held-out examples (AUC
    stays None where the language has one class only); a document without a language counts as "und"."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lang in enumerate(langs):
        groups[lang or "und"].append(i)
    return {
        lang: metrics([labels[i] for i in idx], [scores[i] for i in idx])
        for lang, idx in sorted(groups.items())
        if len(idx) >= MIN_PER_LANGUAGE
    }
