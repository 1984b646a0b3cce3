"""Issue 19's done-when: clean prose that this repository never tuned on is kept in every language the issue names,
through the general stage's real filter chain, with language ID deciding the language; and the rules that made the
difference (the fallback word rules, sentence signs glued to a word) on text that pip packages ship.

The UDHR full texts of ../shared (skipped when absent) are the held-out prose: no threshold was tuned on them.
"""

from __future__ import annotations

import importlib
import json

from filters.base import run_chain
from filters.c4 import C4Quality
from filters.text_features import tokenizer_for
from schemas import Document

# UDHR code -> the label language ID must give, for the languages issue 19 names and the other languages of the
# set with at least 10 million speakers.
GOAL = {
    "cmn_hans": "zh-Hans",
    "cmn_hant": "zh-Hant",
    "jpn": "ja",
    "kor": "ko",
    "tha": "th",
    "khm": "km",
    "mya": "my",
    "tam": "ta",
    "tel": "te",
    "mal": "ml",
    "ben": "bn",
    "hin": "hi",
    "amh": "am",
    "arb": "ar",
    "pes_1": "fa",
    "urd": "ur",
    "rus": "ru",
    "ukr": "uk",
    "042": "es",
    "swe": "sv",
    "ind": "id",
    "vie": "vi",
    "tur": "tr",
    "eng": "en",
    # >= 10 million speakers, not named by the issue
    "deu_1996": "de",
    "por_PT": "pt",
    "ita": "it",
    "pol": "pl",
    "nld": "nl",
    "ron_1953": "ro",
    "ces": "cs",
    "hun": "hu",
    "ell_monotonic": "el",
    "azj_latn": "az",
    "uzn_latn": "uz-Latn",
    "kaz": "kk",
    "mar": "mr",
    "guj": "gu",
    "pan": "pa",
    "kan": "kn",
    "nep": "ne",
    "sin": "si",
    "tgl": "tl",
    "hau_3": "ha",
    "yor": "yo",
    "ibo": "ig",
    "zul": "zu",
}
# NOTE: language ID reads the Indonesian declaration as Malay (filters/langid.py's business, not the filters').
LID_CONFUSIONS = {"ind": {"ms"}}


def test_udhr_in_every_goal_language_is_kept_by_the_general_chain(corpora, general_chain):
    rows = [json.loads(x) for x in (corpora / "multilingual_udhr" / "udhr_full_selected.jsonl").open(encoding="utf-8")]
    docs = [Document(id=r["code"], text=r["text"], source="udhr", domain="web") for r in rows if r["code"] in GOAL]
    assert len(docs) == len(GOAL)
    lineage: list = []
    kept = {d.id for d in run_chain(docs, general_chain, lineage)}
    dropped = {r.doc_id: r.reason for r in lineage if r.action == "dropped"}
    # English was dropped by C4's bad-words rule alone ("sex" in "race, colour, sex, language"): the category word is
    # on the English allowlist now (filters/word_blocklist.py); the four quality filters are still datatrove's.
    assert dropped == {}
    wrong = {d.id: d.lang for d in docs if d.id in kept and d.lang != GOAL[d.id]}
    assert {code: lang for code, lang in wrong.items() if lang not in LID_CONFUSIONS.get(code, ())} == {}
    assert 1 - len(wrong) / len(kept) >= 0.95


def test_sentence_signs_glued_to_a_word_end_sentences_in_udhr_pages(corpora):
    """Articles 7-10 of the Armenian and Gujarati declarations: C4 counted one sentence per line (Armenian "։" and
    a Gujarati full stop stay inside the word spaCy's tokenizers give), so the page was dropped as
    c4_too_few_sentences while the English page with the same articles was kept."""
    rows = {
        r["code"]: r["text"]
        for r in map(json.loads, (corpora / "multilingual_udhr" / "udhr_full_selected.jsonl").open(encoding="utf-8"))
    }
    c4 = C4Quality(filter_no_terminal_punct=False)
    for code, lang in (("eng", "en"), ("hye", "hy"), ("guj", "gu")):
        page = "\n\n".join(rows[code].split("\n\n")[8:12])
        assert c4.filter(Document(id=code, text=page, source="udhr", domain="web", lang=lang)) is True, code


# --- the same rules on text that pip packages ship -------------------------------------------------------------------
def _examples(lang: str) -> list[str]:
    """spaCy's example sentences of `lang`."""
    return list(importlib.import_module(f"spacy.lang.{lang}.examples").sentences)


def test_fallback_words_lose_glued_punctuation_and_edge_joiners():
    """Malayalam has no segmenter here (datatrove assigns indic-nlp-library): the fallback rule set. spaCy's "xx"
    left the full stop and question mark on Malayalam words and the joiner after a final virama."""
    ml = tokenizer_for("ml")
    assert ml.fallback and not tokenizer_for("en").fallback and not tokenizer_for("zh").fallback
    words = ml.words(" ".join(_examples("ml")))
    assert words.count("കവാടങ്ങൾ") == 2  # once before "?", once before "."
    assert "എന്താണ്" in words and "?" in words and "." in words
    assert not [w for w in words if len(w) > 1 and (w[-1] in ".?\u200c\u200d" or w[0] in "\u200c\u200d")]
    # Gujarati (also without its assigned tokenizer): the full stop is a word of its own
    assert tokenizer_for("gu").words("લોકશાહી એ સરકારનું તંત્ર છે.") == ["લોકશાહી", "એ", "સરકારનું", "તંત્ર", "છે", "."]


def test_c4_counts_sentences_at_signs_glued_to_a_word():
    """C4's sentence count (its score) on a paragraph of spaCy's example sentences: Armenian's four questions and
    statements end in "։", which spaCy's "hy" tokenizer leaves on the word (datatrove's splitter saw one sentence);
    four of the Gujarati sentences end in a full stop that "xx" left on the word (it saw two)."""
    c4 = C4Quality(filter_no_terminal_punct=False)
    for lang, sentences in (("hy", 4), ("gu", 4)):
        para = " ".join(_examples(lang))
        result = c4.filter(Document(id=lang, text=para, source="spacy", domain="web", lang=lang))
        assert result == (False, "c4_too_few_sentences", float(sentences)), lang
    # English keeps datatrove's splitter exactly: "U.K." ends no sentence, and neither does a glued "։"
    english = ". ".join(_examples("en")[:3]) + ". Yerevan's motto is «Երևան։ Բոլորը»."
    assert c4.filter(Document(id="en", text=english, source="spacy", domain="web", lang="en"))[2] == 4.0
