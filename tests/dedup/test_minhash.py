"""MinHash-LSH dedup: literal near-duplicates, CJK, determinism, spilling, and F1 on labelled pairs."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from dedup.exact import DupDecision, expected_candidate_probability
from dedup.minhash import MinHashDedup, make_tokenizer, tokenize
from tests.conftest import CORPORA

PAIRS = CORPORA / "dedup_near_duplicate_pairs" / "near_dup_pairs.jsonl"

BASE = (
    "The committee met on Tuesday to review the annual budget for the public library, and after a long "
    "discussion about opening hours, new computers for the reading room and the repair of the old roof, the "
    "members agreed to postpone the final vote until the next meeting in the spring."
)
# One word changed (Jaccard 0.80); three words changed is 0.60, below the default's 0.7 (issue 11).
EDITED = BASE.replace("Tuesday", "Thursday")
LOOSE = BASE.replace("Tuesday", "Thursday").replace("long", "lengthy").replace("spring", "early spring")
OTHER = (
    "A recipe for bread needs flour, water, salt and yeast; knead the dough for ten minutes, let it rise in a "
    "warm place until it doubles, shape the loaf, and bake it in a hot oven until the crust sounds hollow."
)
ZH = (
    "人人生而自由，在尊严和权利上一律平等。"
    "他们赋有理性和良心，并应以兄弟关系的精神相对待。"
    "人人有资格享有本宣言所载的一切权利和自由。"
)
ZH_EDIT = ZH + "本宣言适用于所有人。"  # a sentence added (12-char Jaccard 0.85); a 2-character swap mid-text is 0.57
ZH_OTHER = "今天天气很好，我们一起去公园散步，看到很多孩子在草地上玩耍，老人在树下下棋，湖边有人钓鱼，大家都很开心。"


def test_near_duplicate_clustered_unrelated_not() -> None:
    docs = [("x", OTHER), ("a", BASE), ("b", EDITED), ("c", ZH), ("d", ZH_EDIT), ("e", ZH_OTHER)]
    res = MinHashDedup().find_duplicates(docs)
    assert dict(res.items()) == {
        "a": DupDecision("a", 2, True),
        "b": DupDecision("a", 2, False),
        "c": DupDecision("c", 2, True),
        "d": DupDecision("c", 2, False),
    }
    loose = [("a", BASE), ("f", LOOSE)]  # three words changed in 50: Jaccard 0.60
    assert not dict(MinHashDedup().find_duplicates(loose).items())
    assert dict(MinHashDedup(normalize_numbers=True, min_jaccard=0.4).find_duplicates(loose).items())


def test_cjk_is_tokenised_per_character() -> None:
    toks = tokenize("Hello 世界 wörld 123", make_tokenizer())
    assert toks == ["hello", "世", "界", "wörld", "0"]
    assert tokenize("Hello 世界", make_tokenizer(())) == ["hello", "世界"]


def test_describe_reports_candidate_probabilities() -> None:
    assert expected_candidate_probability(0.8, 14, 8) == pytest.approx(0.924, abs=1e-3)  # FineWeb's figure
    text = MinHashDedup.fineweb().describe()
    assert "14 bands x 8 rows = 112 hashes" in text and "s=0.7 0.565" in text and "s=0.8 0.924" in text
    assert "28 bands x 4 rows" in MinHashDedup().describe()
    assert "union-find 4 B/doc" in MinHashDedup().memory_estimate(10**8)


def test_signature_estimates_jaccard() -> None:
    md = MinHashDedup()
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(400)]
    errs = []
    for _ in range(30):
        a = list(rng.choice(words, 200))
        b = [w if rng.random() > 0.1 else "zz" + w for w in a]
        sa, sb = md.signatures([" ".join(a), " ".join(b)])
        ta, tb = (tokenize(" ".join(x), md.pattern, md.normalize_numbers) for x in (a, b))
        ga = {tuple(ta[i : i + 5]) for i in range(len(ta) - 4)}
        gb = {tuple(tb[i : i + 5]) for i in range(len(tb) - 4)}
        errs.append(abs(np.mean(sa == sb) - len(ga & gb) / len(ga | gb)))
    assert np.mean(errs) < 0.04  # sd of the estimate at J~0.5 with 112 hashes is ~0.047


def _corpus(n: int = 1500) -> list[tuple[str, str]]:
    rng = np.random.default_rng(7)
    vocab = [f"tok{i}" for i in range(3000)]
    bases = [list(rng.choice(vocab, 80)) for _ in range(n // 3)]
    docs = []
    for i in range(n):
        words = list(bases[int(rng.integers(0, len(bases)))])
        for j in rng.integers(0, len(words), int(rng.integers(0, 6))):
            words[j] = str(rng.choice(vocab))
        docs.append((f"doc{i}", " ".join(words)))
    return docs


def test_deterministic_and_spilling_run_matches_in_memory(tmp_path: Path) -> None:
    docs = _corpus()
    first = dict(MinHashDedup().find_duplicates(docs).items())
    again = dict(MinHashDedup().find_duplicates(docs).items())
    assert first == again and len(first) > 500  # 608 at the default's 0.7 (up to 5 of 80 words replaced)
    spill = MinHashDedup(max_memory_mb=0.05, workdir=tmp_path)  # partitions band files, memory-maps signatures
    assert dict(spill.find_duplicates(docs).items()) == first
    keep = [d for d in first.values() if d.keep]
    assert all(d.cluster_id == doc_id for doc_id, d in first.items() if d.keep) and keep


def _f1_table(md: MinHashDedup, pairs: list[dict]) -> tuple[float, dict[str, list[int]]]:
    ids: dict[str, str] = {}
    for p in pairs:
        for k in ("text_a", "text_b"):
            ids.setdefault(p[k], f"t{len(ids)}")
    res = md.find_duplicates((i, t) for t, i in ids.items())

    def cluster(text: str) -> str:
        d = res.get(ids[text])
        return d.cluster_id if d else ids[text]

    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp fp fn tn
    for p in pairs:
        pred = cluster(p["text_a"]) == cluster(p["text_b"])
        slot = (0 if p["label"] else 1) if pred else (2 if p["label"] else 3)
        stats[p["source"]][slot] += 1
        stats["ALL"][slot] += 1
    tp, fp, fn, _ = stats["ALL"]
    return 2 * tp / (2 * tp + fp + fn), dict(stats)


@pytest.mark.skipif(not PAIRS.is_file(), reason=f"labelled pairs not found at {PAIRS}")
def test_f1_on_labelled_near_duplicate_pairs() -> None:
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    # This set counts GSM-Hard ("the same problem with other numbers") as positive and has only easy negatives,
    # so it rewards over-merging (issue 11): it checks the clustering machinery with the previous setting, and
    # that the default keeps its exact/licence matches without merging any negative.
    old = MinHashDedup(normalize_numbers=True, num_bands=28, rows_per_band=4, min_jaccard=0.4)
    f1, stats = _f1_table(old, pairs)
    f1_fw, _ = _f1_table(MinHashDedup.fineweb(), pairs)
    f1_new, new = _f1_table(MinHashDedup(), pairs)
    print("\n| source | TP | FP | FN | TN | precision | recall | F1 |\n|---|---|---|---|---|---|---|---|")
    for src, (tp, fp, fn, tn) in sorted(stats.items()):
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        print(f"| {src} | {tp} | {fp} | {fn} | {tn} | {prec:.3f} | {rec:.3f} | {f:.3f} |")
    print(f"previous 28x4@0.4 F1 {f1:.4f}; FineWeb 14x8 F1 {f1_fw:.4f}; default F1 {f1_new:.4f} {new}")
    assert f1 >= 0.98  # measured 0.9887 (precision 1.000, recall 0.978)
    assert stats["ALL"][1] == 0  # no false positive: not even the Japanese / Chinese dialect translations
    assert stats["license_texts"][2] == 0 and stats["udhr_variants"][2] == 0
    assert f1_fw < f1  # FineWeb's 14x8 misses reworded GSM8K answers (measured 0.84)
    assert new["ALL"][1] == 0 and new["license_texts"][2] == 0
    # GSM-Hard pairs whose text was left unchanged are still found; those with other numbers are not any more.
    assert 0 < new["gsm8k~gsm_hard"][0] < stats["gsm8k~gsm_hard"][0]


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="min_jaccard"):
        MinHashDedup(min_jaccard=1.5)
    with pytest.raises(ValueError, match="unknown script"):
        MinHashDedup(char_scripts=("klingon",))
    assert re.search(r"numbers kept", MinHashDedup().describe())
    assert re.search(r"numbers ->0", MinHashDedup.fineweb().describe())
