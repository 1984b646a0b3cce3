"""Decontamination: literal spans, the short-field rule, and all GSM8K / MATH-500 items planted in real text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import CORPORA

from dedup.decontam import Decontaminator, EvalSet
from filters.base import run_chain
from schemas import Document, LineageRecord

MATH = CORPORA / "stem_math"

QUESTION = (
    "A baker sells loaves of sourdough for seven dollars each and rye loaves for five dollars each; on Monday she "
    "sold thirty sourdough loaves and twelve rye loaves. How much money did she make?"
)


@pytest.fixture()
def toy(tmp_path: Path) -> Decontaminator:
    path = tmp_path / "toy.jsonl"
    rows = [
        {"question": QUESTION, "answer": "She made 7 * 30 + 5 * 12 = 270 dollars. #### 270"},
        {"question": "Simplify $\\sqrt{242}$.", "answer": "$11\\sqrt2$"},
        {"question": "Find x.", "answer": "4"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return Decontaminator([EvalSet("toy", path, ("question", "answer"))])


def test_embedded_question_dropped_with_reason(toy: Decontaminator) -> None:
    doc = "Welcome to our blog! Today's puzzle: " + QUESTION.upper() + " Leave your answer in the comments."
    ok, reason, score = toy.check(doc)
    assert (ok, reason) == (False, "decontam_toy") and 0.5 < score <= 1.0


def test_twelve_words_are_not_enough(toy: Decontaminator) -> None:
    twelve = " ".join(QUESTION.split()[:12])
    assert toy.check(f"Unrelated start. {twelve} and then something else entirely different here.") is True


def test_short_field_matched_whole_with_symbols(toy: Decontaminator) -> None:
    result = toy.check("Homework 3, exercise 2: Simplify $\\sqrt{242}$. Show your work.")
    assert result[:2] == (False, "decontam_toy")
    assert toy.check("We simplify 242 items in the sqrt list.") is True  # same words, not the same tokens
    assert toy.check("Find x. Then find y.") is True  # "Find x." is under min_short_tokens: not indexed
    assert toy.skipped_short["toy"] == 3  # "Find x.", "4" and "$11\sqrt2$" (5 tokens)


def test_as_filter_in_chain(toy: Decontaminator) -> None:
    lineage: list[LineageRecord] = []
    docs = [Document("a", "Clean text about gardening.", "s", "web"), Document("b", QUESTION, "s", "stem")]
    kept = [d.id for d in run_chain(docs, [toy], lineage)]
    assert kept == ["a"] and [(r.doc_id, r.reason) for r in lineage] == [("b", "decontam_toy")]


def test_bad_eval_sets(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Decontaminator([EvalSet("x", tmp_path / "missing.jsonl")])
    (tmp_path / "e.jsonl").write_text('{"problem": "p"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="field 'question' missing"):
        Decontaminator([EvalSet("x", tmp_path / "e.jsonl")])
    with pytest.raises(ValueError, match="snake_case"):
        EvalSet("bad name!", tmp_path / "e.jsonl")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.skipif(not MATH.is_dir(), reason=f"stem_math corpus not found at {MATH}")
def test_all_planted_items_removed_and_real_text_kept() -> None:
    deco = Decontaminator(
        [
            EvalSet("gsm8k", MATH / "gsm8k_test.jsonl", ("question", "answer")),
            EvalSet("math500", MATH / "math500_test.jsonl", ("problem", "solution")),
            EvalSet("math", MATH / "math_test_sample_not_in_math500.jsonl", ("problem", "solution")),
            EvalSet("mmlu_stem", MATH / "mmlu_stem_test.jsonl", ("question", "choices")),
        ]
    )
    udhr = _jsonl(CORPORA / "multilingual_udhr" / "udhr_full_selected.jsonl")
    paragraphs = [p for r in udhr for p in r["text"].split("\n") if len(p) > 200]
    rng = random.Random(0)
    planted = missed = 0
    for name, fields in (("gsm8k", ("question", "answer")), ("math500", ("problem", "solution"))):
        file = "gsm8k_test.jsonl" if name == "gsm8k" else "math500_test.jsonl"
        for row in _jsonl(MATH / file):
            for inject in (row[fields[0]], row[fields[0]] + "\n" + row[fields[1]]):
                doc = f"{rng.choice(paragraphs)}\n\n{inject}\n\n{rng.choice(paragraphs)}"
                planted += 1
                result = deco.check(doc)
                missed += result is True or result[1] != f"decontam_{name}"
    clean = [r["text"] for r in udhr]
    clean += [r["text"] for r in _jsonl(CORPORA / "multilingual_udhr" / "udhr_article1.jsonl")]
    clean += [r["content"] for r in _jsonl(CORPORA / "code_permissive" / "code_files.jsonl")]
    clean += [r["text"] for r in _jsonl(CORPORA / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl")]
    false_pos = [t[:80] for t in clean if deco.check(t) is not True]
    print(f"\nplanted {planted}, missed {missed}; clean {len(clean)}, false positives {len(false_pos)}")
    assert planted == 2 * (1319 + 500) and missed == 0
    assert false_pos == []
