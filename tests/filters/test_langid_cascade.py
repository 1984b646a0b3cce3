"""filters.langid.LangId (cascade of py3langid, CLD3 and lingua) and filters.prose: literal texts, labels with
scripts, math kept, what the models read, lid176 mode unchanged, config errors; accuracy on the shared corpora."""

from __future__ import annotations

import json
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from filters import lid_models, lid_thresholds
from filters.chain import FilterConfigError, build_chain
from filters.langid import FastTextLangId, LangId
from filters.prose import prose
from schemas import Document


def _doc(text: str, domain: str = "web", lang: str | None = None) -> Document:
    return Document(id="d", text=text, source="t", domain=domain, lang=lang)


def test_labels_cover_119_languages_with_scripts():
    assert len(lid_models.LABELS) >= 119
    assert {"zh-Hans", "zh-Hant", "sr-Cyrl", "sr-Latn", "en", "ceb", "haw", "tn", "ts"} <= lid_models.LABELS
    assert "zh" not in lid_models.LABELS and "no" not in lid_models.LABELS  # script always given; "no" is "nb"
    assert lid_models.normalize("iw") == "he" and lid_models.normalize("ru-Latn") is None


def test_literal_languages():
    f = LangId()
    cases = {
        "The committee will publish its findings about the river pollution next week.": "en",
        "Der Ausschuss wird seine Ergebnisse zur Verschmutzung des Flusses nächste Woche veröffentlichen.": "de",
        "Le comité publiera ses conclusions sur la pollution de la rivière la semaine prochaine.": "fr",
        "El comité publicará sus conclusiones sobre la contaminación del río la próxima semana.": "es",
        "Комитет опубликует свои выводы о загрязнении реки на следующей неделе.": "ru",
        "委员会将在下周公布关于河流污染的调查结果。": "zh-Hans",
        "委員會將在下週公佈關於河流污染的調查結果。": "zh-Hant",
        "Одбор ће следеће недеље објавити своје налазе о загађењу реке.": "sr-Cyrl",
        "委員会は来週、川の汚染に関する調査結果を発表する予定です。": "ja",
    }
    docs = [_doc(t) for t in cases]
    results = f.filter_batch(docs)
    assert [d.lang for d in docs] == list(cases.values())
    assert all(r is True for r in results), results


def test_script_labels():
    assert lid_models.script_label("zh", "这是简体中文的句子，说明国家与学习。") == "zh-Hans"
    assert lid_models.script_label("zh", "這是繁體中文的句子，說明國家與學習。") == "zh-Hant"
    assert lid_models.script_label("sr", "Ово је реченица.") == "sr-Cyrl"
    assert lid_models.script_label("sr", "Ovo je rečenica.") == "sr-Latn"
    assert lid_models.script_label("uz", "Bu gap oʻzbek tilida.") == "uz-Latn"
    assert lid_models.script_label("de", "Ово") == "de"  # one-script languages keep their code


def test_script_labels_on_cpython_cjk_text():
    # CPython's own test data: the same text in simplified (GB2312) and traditional (Big5) characters.
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    if not (folder / "gb2312-utf8.txt").is_file():
        pytest.skip("CPython's test/cjkencodings is not installed")
    f = LangId()
    hans, hant = _doc((folder / "gb2312-utf8.txt").read_text()), _doc((folder / "big5-utf8.txt").read_text())
    f.filter_batch([hans, hant])
    assert (hans.lang, hant.lang) == ("zh-Hans", "zh-Hant")


def test_prose_removes_latex_code_urls_and_emails():
    text = (
        "We prove the claim for every integer $n > 2$ using $$\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$$ and \\(x^2\\),\n"
        "\\[ \\int_0^1 f(x)\\,dx \\]\n\\begin{align} a &= b + c \\\\ d &= e \\end{align}\n"
        "```python\nimport numpy as np\nprint(np.zeros(3))\n```\n"
        "    def helper(value):\n        return value * 2\n"
        "See https://example.org/paper?id=7 or www.example.com, write to someone@example.org.\n"
        "x^2 + y^2 = z^2\n#### 18\nShe sells eggs for $2 each and $3 per dozen: 16 - 3 = <<16-3=13>>13 left."
    )
    p = prose(text)
    for gone in (
        "$",
        "sum",
        "frac",
        "int_0",
        "align",
        "numpy",
        "print",
        "helper",
        "return",
        "https",
        "example",
        "someone",
        "@",
        "<<",
        "x^2",
        "####",
        "16",
        "=",
    ):
        assert gone not in p.text, (gone, p.text)
    assert p.text.startswith("We prove the claim for every integer using and")
    assert "She sells eggs for $2 each and $3 per dozen" not in p.text  # numbers go, words stay
    assert "She sells eggs for each and per dozen" in p.text
    assert 0.5 < p.markup_ratio < 1.0
    assert prose("") == prose("   \n") == type(p)("", 0.0)
    assert prose("a " * 10_000, max_chars=100).text == ("a " * 50).strip()


def test_prose_keeps_scripts_written_with_combining_marks():
    # Vowel signs are combining marks, not letters, to Python's `re`: counted by letters alone these lines fell
    # under half and were removed as formulas, so Punjabi and Burmese text had no prose and no language.
    cases = {
        "pa": "ਅਸੀਂ ਕੱਲ੍ਹ 20 ਕਿਤਾਬਾਂ ਖ਼ਰੀਦੀਆਂ ਅਤੇ ਪੜ੍ਹੀਆਂ।",
        "my": "ကျောင်းသားများသည် စာအုပ်များကို ဖတ်ကြသည်။",
        "ta": "நேற்று 10 மாணவர்கள் பள்ளிக்கு வந்தார்கள்.",
    }
    for lang, text in cases.items():
        p = prose(text)
        assert p.text.startswith(text.split()[0]) and "20" not in p.text and p.markup_ratio < 0.2, (lang, p)
        d = _doc(text)
        assert LangId().filter(d) is True and d.lang == lang
    assert prose("x = 2 + 3\nਅਸੀਂ 20 = 4 + 16").text == ""  # a formula stays a formula in any script


def test_prose_reads_a_window_not_the_whole_document():
    # Enough prose in the first 3 * max_chars: the rest (here a code dump) is not read, not even for the ratio.
    text = "plain words here " * 200 + "\n" + "x = [1, 2, 3]\n" * 5000
    p = prose(text, max_chars=500)
    assert len(p.text) == 500 and p.markup_ratio == 0.0
    # Too little prose in the first window: the window grows to 8 * max_chars, and the markup counts.
    text = "x = [1, 2, 3]\n" * 150 + "plain words here " * 200
    p = prose(text, max_chars=500)
    assert p.text.startswith("plain words") and 0.3 < p.markup_ratio < 1.0


def test_fast_path_settles_agreed_languages_outside_groups():
    en = lid_models.cascade("The committee will publish its findings about the river pollution next week.")
    assert (en.lang, en.models) == ("en", "lid176+cld3") and en.score > 0.9
    # Bosnian is in the bs/hr/sr group: never settled by the fast path, whatever the two fast models say.
    bs = lid_models.cascade("Odbor će sljedeće sedmice objaviti svoje nalaze o zagađenju rijeke u Sarajevu.")
    assert bs.models.startswith("py3langid+cld3") and bs.lang in ("bs", "hr", "sr-Latn")
    # One fastText call for a batch gives the same predictions as one text at a time.
    texts = ["Der Ausschuss wird seine Ergebnisse nächste Woche veröffentlichen.", "", "委员会将在下周公布结果。"]
    assert lid_models.cascade_batch(texts) == [lid_models.cascade(t) for t in texts]


def test_lingua_reads_short_text_in_high_accuracy_mode_only_when_asked(monkeypatch):
    monkeypatch.setattr(lid_models, "_LINGUA", {})  # detectors this test builds, by (languages, low accuracy)
    short = "Njegovo djetinjstvo nije bilo posebno sretno."  # bs/hr/sr: lingua is asked
    long = " ".join([short, "Odbor će sljedeće sedmice objaviti svoje nalaze o zagađenju rijeke."] * 3)
    LangId().filter_batch([_doc(short), _doc(long)])
    assert {low for _, low in lid_models._LINGUA} == {True}  # default: trigrams only
    lid_models._LINGUA.clear()
    LangId(lingua_high_accuracy_below=200).filter_batch([_doc(short), _doc(long)])
    assert sorted({low for _, low in lid_models._LINGUA}) == [False, True]


def test_models_read_only_the_prose(monkeypatch):
    seen = []
    real = lid_models.cascade
    monkeypatch.setattr(lid_models, "cascade", lambda text, *a: seen.append(text) or real(text, *a))
    text = "Read the manual at https://docs.example.com/x and mail admin@example.com today.\n$$E = mc^2$$"
    LangId().filter(_doc(text))
    assert seen == ["Read the manual at and mail today."]
    LangId(max_chars=100).filter(_doc("word " * 5000))
    assert len(seen[-1]) <= 100


def test_math_heavy_documents_are_kept_and_say_why():
    f = LangId(languages=["en"])
    math = (
        "Find $x$.\n$$\\frac{x^2 - 5x + 6}{x - 3} = 7$$\n\\begin{align*} x - 2 &= 7 \\\\ x &= 9 \\end{align*}\n"
        "So $x = \\boxed{9}$."
    )
    d = _doc(math, domain="stem")
    assert f.filter(d) is True
    assert d.metadata["langid"]["kept"] == "mostly_markup" and d.metadata["langid"]["markup_ratio"] >= 0.5
    # Without the exemption the same document is dropped for its low score.
    d = _doc(math, domain="stem")
    ok, reason, score = LangId(min_markup_ratio=None).filter(d)
    assert (ok, reason) == (False, "langid_low_score") and score <= 0.65
    # A math-heavy document with real prose is judged (and kept) by its language.
    d = _doc(
        "We have that $r = \\sqrt{0^2 + 3^2} = 3.$ Also, if we draw the line connecting the origin and "
        "$(0,3),$ this line makes an angle of $\\frac{\\pi}{2}$ with the positive $x$-axis."
    )
    assert f.filter(d) is True and d.lang == "en" and "kept" not in d.metadata.get("langid", {})
    # Empty text: nothing to keep it for.
    ok, reason, _ = LangId().filter(_doc(""))
    assert (ok, reason) == (False, "langid_low_score")


def test_thresholds_languages_and_groups():
    text = "The committee will publish its findings about the river pollution next week."
    assert LangId(min_scores={"en": 0.999999}).filter(_doc(text))[1] == "langid_low_score"
    assert LangId(min_scores={"de": 0.999999}).filter(_doc(text)) is True
    f = LangId(languages=["zh"], min_scores={"zh": 0.1})
    assert f.threshold("zh-Hant") == 0.1 and f.threshold("en") == 0.65
    assert f.filter(_doc("委員會將在下週公佈關於河流污染的調查結果。")) is True  # "zh" wants both scripts
    ok, reason, _ = f.filter(_doc(text))
    assert (ok, reason) == (False, "langid_unwanted_language")
    d = _doc("Vlada je u ponedjeljak objavila da će porez na dodanu vrijednost ostati nepromijenjen do kraja godine.")
    LangId(min_score=None).filter(d)
    meta = d.metadata["langid"]
    assert d.lang in {"hr", "bs", "sr-Latn"} and meta["group"] == "bs/hr/sr"
    assert meta["runner_up"] in {"hr", "bs", "sr", "sl"} and meta["runner_up"] != d.lang
    # A curated source label is kept as in FastTextLangId.
    d = _doc("Ovo je kratka rečenica.", lang="bs")
    assert LangId(languages=["bs"]).filter(d) is True and d.lang == "bs"


def test_per_language_thresholds_from_the_table():
    table = lid_thresholds.min_scores()
    assert "en" not in table and all(0.3 <= v <= 0.9 for v in table.values())
    assert table["ms"] < table["de"] == 0.9  # a language that shares its score with a close one gets a lower bar
    f = LangId()
    assert (f.threshold("en"), f.threshold("de"), f.threshold("ms")) == (0.65, 0.9, table["ms"])
    assert f.threshold("sr-Cyrl") == table["sr-Cyrl"] and f.threshold("haw") == 0.65  # no row: min_score
    assert LangId(min_scores={"de": 0.5}).threshold("de") == 0.5  # the stage file's min_scores win
    assert LangId(table_domains=[]).threshold("de") == 0.65 and f.threshold("de", "stem") == 0.65  # web only
    assert LangId(min_score=None).threshold("de") is None  # check off: the table too
    # The same score, 0.8: a German document is unsure (dropped), an English one kept as datatrove keeps it.
    de, en = _doc("Der Ausschuss tagt."), _doc("The committee meets.")
    assert f.decide(de, lid_models.Prediction("de", 0.8), 0.0) == (False, "langid_low_score", 0.8)
    assert f.decide(en, lid_models.Prediction("en", 0.8), 0.0) is True
    assert LangId(table_domains=[]).decide(_doc("x"), lid_models.Prediction("de", 0.8), 0.0) is True
    assert f.decide(_doc("x", domain="stem"), lid_models.Prediction("la", 0.8), 0.0) is True  # English read as Latin


def test_lid176_mode_is_fasttext_unchanged():
    texts = [
        "Das ist ein ganz normaler deutscher Satz über das Wetter.",
        "",
        "This is plainly English text.",
        "12345 67 890 ++ --",
        "Find $x$ such that $$x^2 = 4$$",
        "Le renard brun saute.",
        "Ovo je rečenica.",
    ]
    for kwargs in ({}, {"languages": ["en", "no"], "min_score": 0.5}, {"min_score": None}):
        ours, ref = [_doc(t) for t in texts], [_doc(t) for t in texts]
        assert LangId(model="lid176", **kwargs).filter_batch(ours) == FastTextLangId(**kwargs).filter_batch(ref)
        assert [(d.lang, d.lang_score, d.metadata) for d in ours] == [(d.lang, d.lang_score, d.metadata) for d in ref]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "lid999"}, "model = 'lid999': unknown; choose one of ['cascade', 'lid176']"),
        ({"min_score": "high"}, "min_score = 'high': must be a number in [0, 1] or None"),
        ({"min_score": 1.5}, "min_score = 1.5: must be a number in [0, 1] or None"),
        ({"min_scores": {"en": -0.1}}, "min_scores.en = -0.1: must be a number in [0, 1]"),
        ({"min_scores": {"en": "x"}}, "min_scores.en = 'x': must be a number in [0, 1]"),
        ({"min_scores": {"xx": 0.5}}, "min_scores.xx: unknown language code 'xx' for model 'cascade'"),
        ({"languages": ["en", "klingon"]}, "languages: unknown language code(s) ['klingon'] for model 'cascade'"),
        ({"languages": ["nb"], "model": "lid176"}, "languages: unknown language code(s) ['nb'] for model 'lid176'"),
        ({"model": "lid176", "min_scores": {"en": 0.5}}, "min_scores: per-language thresholds need model = 'cascade'"),
        ({"max_chars": 10}, "max_chars = 10: must be an integer >= 100"),
        ({"min_markup_ratio": 2}, "min_markup_ratio = 2: must be a number in [0, 1] or None"),
        ({"lingua_high_accuracy_below": -1}, "lingua_high_accuracy_below = -1: must be an integer >= 0"),
        ({"table_domains": "web"}, "table_domains = 'web': must be a list of domains from"),
    ],
)
def test_config_errors_are_one_line_at_build_time(kwargs, message):
    with pytest.raises(FilterConfigError) as e:
        build_chain({"langid": kwargs})
    assert str(e.value).startswith(f"[filters.langid]: {message}") and "\n" not in str(e.value)


def test_building_loads_no_model():
    import subprocess
    import sys

    code = (
        "from filters.chain import build_chain; import filters.lid_models as m, filters.lid176 as l; "
        "build_chain({'langid': {'min_scores': {'bs': 0.5}}}); "
        "assert m._PY3 is None and m._CLD3 is None and not m._LINGUA and l._MODEL is None; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_stage_files_build(tmp_path):
    from core.paths import STAGES
    from stage.config import load_stage_config

    for stage in STAGES:  # each stage's [filters.langid], merged on configs/stages/base.toml
        f = LangId(**load_stage_config(stage).filters["langid"])
        assert f.model == "cascade" and f.min_score == 0.65, stage


# --- shared corpora (skipped without ../shared) ------------------------------------------------------------------


def test_accuracy_on_lingua_sentences(corpora):
    rows = [json.loads(x) for x in (corpora / "multilingual_lingua_testdata/lingua_testdata_sample.jsonl").open()]
    rows = [r for r in rows if r["kind"] == "sentences"]
    f = LangId()
    preds = f.predict_batch(r["text"] for r in rows)
    ok, n = Counter(), Counter()
    kept = kept_right = 0
    for r, (p, _) in zip(rows, preds):
        n[r["lang"]] += 1
        right = p.lang.split("-")[0] == r["lang"]
        ok[r["lang"]] += right
        if p.score > f.threshold(p.lang):  # what the filter keeps with the per-language table
            kept, kept_right = kept + 1, kept_right + right
    acc = sum(ok.values()) / sum(n.values())
    print(
        f"\ncascade accuracy on lingua sentences: {acc:.4f} ({len(n)} languages); kept {kept / len(rows):.3f}, "
        f"right among kept {kept_right / kept:.4f}"
    )
    # Measured 0.892 kept, 0.983 of them right (FineWeb-2 thresholds from held-out lines of the same source).
    assert kept_right / kept >= 0.975 and kept / len(rows) >= 0.85
    # Measured 0.954 through the filter (0.965 with lingua_high_accuracy_below = 200; lid.176: 0.793); the misses
    # are mostly ms->id (21 of 30: every model reads most of these Malay sentences as Indonesian) and bs->hr.
    assert acc >= 0.945
    for lang in n:
        # measured: ms 10 of 30, bs 12, nb 20 (read as nn), id 23; every other language >= 25
        assert ok[lang] / n[lang] >= {"ms": 0.25, "bs": 0.3, "nb": 0.6}.get(lang, 0.75), lang


def test_stem_documents_are_not_dropped(real_data):
    docs = []
    for items in real_data.stem_math.values():  # GSM8K, MATH, MMLU-STEM: 400 of each, spread over the set
        docs += [_doc(text, domain="stem") for text in items[:: len(items) // 400][:400]]
    results = LangId().filter_batch(docs)
    dropped = sum(r is not True for r in results) / len(docs)
    print(f"\nstem documents dropped by langid: {dropped:.4f} of {len(docs)}")
    # Measured 0.0025 (3 of 1,200, all short MMLU items of formulas: "Find 3 over 4 - 1 over 8." and its choices).
    assert dropped <= 0.01


if __name__ == "__main__":
    pytest.main([__file__, "-s", "-q"])
