"""The report per language: documents in, kept and dropped with the reasons, tokens packed, and tokenizer fertility,
from a real stage run (run_stage and the local step runner, no Prefect) over spaCy's example sentences in eight
languages and seven scripts, whose language ID labels, plus a Chinese copy (exact dedup drops it) and a Russian
page of repeated lines (Gopher's repetition rule drops it)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from schemas import DUP_CLUSTER_SIZE

LANGS = ("de", "ru", "zh", "ja", "ko", "ar", "hi", "am")
REPEATED = "\n".join(["Купить дешево окна двери недорого Москва"] * 12)  # one Russian line, twelve times


def _examples(lang: str) -> str:
    return "\n".join(importlib.import_module(f"spacy.lang.{lang}.examples").sentences)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from ingest.sources import load_sources
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step
    from stage.config import load_stage_config
    from stage.run import run_stage

    root = tmp_path_factory.mktemp("languages")
    texts = [_examples(lang) for lang in LANGS] + [_examples("zh"), REPEATED]
    (root / "web").mkdir()
    (root / "web" / "pages.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), "utf-8")
    (root / "sources.toml").write_text(
        '[[source]]\nname = "pages"\ndomain = "web"\nformat = "jsonl"\npath = "web/*.jsonl"\nlicense = "MIT"\n'
    )
    off = ("url_blocklist", "gopher_quality", "c4", "fineweb", "word_blocklist", "toxicity", "pii", "secrets")
    tables = "".join(f"[filters.{name}]\nenabled = false\n" for name in off)
    (root / "stage.toml").write_text(
        # one bar for every language (not the per-language table): the repeated Russian page must reach Gopher
        f'stage = "general"\nsources = "sources.toml"\n[filters.langid]\nmin_score = 0.65\ntable_domains = []\n'
        f"{tables}"
        "[dedup.exact]\nper_language = true\n[decontam]\nenabled = false\n"
        '[shards]\ntokenizer = "o200k_harmony"\nseq_len = 16\n'
    )
    layout = RunLayout(root / "run")
    cfg = load_stage_config("general", root / "stage.toml")
    run_stage(cfg, load_sources(str(root / "sources.toml")), layout, lambda step: run_step(step, layout))
    return layout.root


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    from report.data import collect

    return collect(run_dir)


@pytest.fixture(scope="module")
def page(report) -> str:
    from report.html import render

    return render(report)


def test_funnel_per_language_counts_every_document_once(run_dir, report) -> None:
    from flows.query import connect

    rows = {r["lang"]: r for r in report["languages"]}
    con = connect(run_dir)
    zh = next(r for code, r in rows.items() if code.startswith("zh"))  # zh-Hans: language ID names the script
    assert (zh["docs_in"], zh["docs"], zh["dropped"]) == (2, 1, 1) and "exact_dedup_duplicate (1)" in zh["top_reasons"]
    assert (rows["ru"]["docs_in"], rows["ru"]["docs"], rows["ru"]["dropped"]) == (2, 1, 1)
    assert rows["ru"]["top_reasons"].startswith("gopher_repetition_")
    for lang in ("de", "ja", "ko", "ar", "hi", "am"):
        assert (rows[lang]["docs_in"], rows[lang]["docs"], rows[lang]["dropped"]) == (1, 1, 0), (lang, rows)
    assert sum(r["docs_in"] for r in rows.values()) == len(LANGS) + 2  # kept + dropped = every document read
    packed = con.sql("SELECT sum(num_tokens) FROM shards").fetchall()[0][0]
    assert (
        all(r["tokens"] > 0 for r in rows.values() if r["docs"]) and sum(r["tokens"] for r in rows.values()) == packed
    )
    # Every decision carries the language it was taken on; the survivor of the Chinese pair stands for both.
    assert con.sql("SELECT count(*) FROM lineage WHERE lang IS NULL").fetchall()[0][0] == 0
    sizes = con.sql(f"SELECT json_extract(metadata, '$.{DUP_CLUSTER_SIZE}')::INT FROM docs WHERE lang LIKE 'zh%'")
    assert sizes.fetchall() == [(2,)]


def test_fertility_per_language_for_both_tokenizers(report) -> None:
    rows = {r["lang"]: r for r in report["fertility"]}
    assert {"de", "ru", "ja", "ko", "ar", "hi", "am"} <= set(rows) and any(code.startswith("zh") for code in rows)
    zh = next(r for code, r in rows.items() if code.startswith("zh"))
    for r in rows.values():
        for tok in ("o200k_harmony", "qwen"):
            assert 0 < r[f"{tok}_per_char"] < r[f"{tok}_per_word"], r
    # Words come from the segmenter: a Chinese sentence has many words and no spaces between them.
    assert zh["words"] > 5 * len(_examples("zh").split())
    # A Han character carries more tokens than a Latin letter, and a German word about one and a half.
    assert zh["o200k_harmony_per_char"] > 2 * rows["de"]["o200k_harmony_per_char"]
    assert 1.0 < rows["de"]["o200k_harmony_per_word"] < 2.5


def test_page_and_artifacts_show_the_language_sections(run_dir, report, page) -> None:
    from pipeline.layout import RunLayout
    from report.artifacts import markdown, tables

    assert '<section id="fertility">' in page and "o200k_harmony tokens/word" in page
    assert "exact_dedup_duplicate (1)" in page
    assert {"languages", "fertility"} <= {section for section, rows, _ in tables(report) if rows}
    assert "## Tokenizer fertility (tokens per word)" in markdown(report, RunLayout(run_dir))


def test_documents_without_a_segmenter_are_counted_per_language(run_dir, report, page) -> None:
    """Hindi has no word segmenter here (datatrove assigns stanza; Korean has mecab-ko's morphemes): the filter step
    counts its documents per language in its stats, and the page says so in one line."""
    from pipeline.layout import RunLayout

    step = json.loads(RunLayout(run_dir).step_marker("filter").read_text(encoding="utf-8"))
    extra = step["stats"]["extra"]
    assert {k: v for k, v in extra.items() if k.startswith("segmentation_fallback.")} == {
        "segmentation_fallback.hi": 1,
    }
    assert report["segmentation_fallback"] == {"hi": 1}
    funnel = json.loads(RunLayout(run_dir).funnel.read_text(encoding="utf-8"))["funnel"]
    assert next(row for row in funnel if row["step"] == "filter")["segmentation_fallback"] == {"hi": 1}
    assert "Judged with the fallback word rules (no segmenter installed for the language): hi 1 documents." in page


def test_lang_script_names_the_script_of_each_text(run_dir) -> None:
    """`lang_script` in `docs` and `lineage`: the label with the Unicode script of the text (a script the label
    names already, zh-Hans, is kept); the dropped Russian page's decision carries it too."""
    from report.views import connect

    con = connect(run_dir)
    docs = dict(con.sql("SELECT lang, lang_script FROM docs").fetchall())
    zh = next(code for code in docs if code.startswith("zh-"))
    assert docs == {
        "de": "de_Latn",
        "ru": "ru_Cyrl",
        zh: zh.replace("-", "_"),
        "ja": "ja_Jpan",
        "ko": "ko_Hang",
        "ar": "ar_Arab",
        "hi": "hi_Deva",
        "am": "am_Ethi",
    }
    dropped = con.sql("SELECT reason, lang_script FROM lineage WHERE action = 'dropped' AND lang = 'ru'").fetchall()
    assert [script for reason, script in dropped if reason.startswith("gopher_repetition_")] == ["ru_Cyrl"]
    # every lineage row has one, and the lineage keeps its row count
    assert con.sql("SELECT count(*) FROM lineage WHERE lang_script IS NULL").fetchall()[0][0] == 0
    assert (
        con.sql("SELECT count(*) FROM lineage").fetchall() == con.sql("SELECT count(*) FROM lineage_steps").fetchall()
    )


def test_a_russian_drop_shows_the_russian_threshold(report, page) -> None:
    """The Russian page of repeated lines was judged against FineWeb-2's Russian row: the report shows that value
    beside it (the drop-reason example and the quality table), not English's."""
    from filters.language_thresholds import thresholds_for
    from report.thresholds import threshold

    row = next(r for r in report["drop_reasons"] if r["reason"].startswith("gopher_repetition_"))
    expected = {
        "gopher_repetition_dup_line_frac": thresholds_for("ru").dup_line_frac,
        **{f"gopher_repetition_top_{n}_gram": r for n, r in thresholds_for("ru").top_n_grams},
    }[row["reason"]]
    assert row["lang"] == "ru" and row["threshold"] == expected != threshold(row["reason"], {})
    quality = next(q for q in report["quality"] if q["reason"] == row["reason"])
    assert quality["by_language"] == [{"lang": "ru", "dropped": 1, "threshold": expected}]
    assert f"ru {expected} (1)" in page
