"""Held-out metrics of a binary classifier: accuracy at a threshold and ROC AUC, overall and per language."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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


def per_language(langs: Sequence[str | None], labels: Sequence[bool], scores: Sequence[float]) -> dict[str, Any]:
    """`binary_metrics` of each language with at least MIN_PER_LANGUAGE held-out examples (AUC stays None where
    the language has one class only); a document without a language counts as "und"."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lang in enumerate(langs):
        groups[lang or "und"].append(i)
    return {
        lang: binary_metrics([labels[i] for i in idx], [scores[i] for i in idx])
        for lang, idx in sorted(groups.items())
        if len(idx) >= MIN_PER_LANGUAGE
    }
