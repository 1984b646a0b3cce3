"""filters.langid: literal texts with their language and reasons, and accuracy on lingua's sentences."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from filters.langid import FastTextLangId
from schemas import Document

# lid.176 has no label for these lingua languages: they can only be misidentified.
UNSUPPORTED = {"lg", "mi", "sn", "st", "tn", "ts", "xh", "zu"}
SAME = {"nb": "no"}  # lid.176's single Norwegian label "no" is Bokmål in practice


def _doc(text: str, domain: str = "web", lang: str | None = None) -> Document:
    return Document(id="d", text=text, source="t", domain=domain, lang=lang)


def test_literal_languages_and_reasons():
    f = FastTextLangId(languages=["en", "de"])
    d = _doc("The quick brown fox jumps over the lazy dog while the farmer watches from the porch.")
    assert f.filter(d) is True and d.lang == "en" and d.lang_score > 0.65
    d = _doc("Der schnelle braune Fuchs springt über den faulen Hund,\nwährend der Bauer zusieht.")
    assert f.filter(d) is True and d.lang == "de"
    d = _doc("Le renard brun rapide saute par-dessus le chien paresseux pendant que le fermier regarde.")
    ok, reason, score = f.filter(d)
    assert (ok, reason, d.lang) == (False, "langid_unwanted_language", "fr") and score > 0.65


def test_low_score_and_empty_text():
    f = FastTextLangId()
    for text in ("", "   \n  ", "12345 67 890 ++ --"):
        ok, reason, score = f.filter(_doc(text))
        assert (ok, reason) == (False, "langid_low_score") and score <= 0.65
    assert f.predict("") == ("unknown", 0.0)
    assert FastTextLangId(min_score=None).filter(_doc("")) is True


def test_domains_batch_and_source_lang():
    f = FastTextLangId(languages=["en"])
    assert not f.applies_to(_doc("fn main() {}", domain="code")) and f.applies_to(_doc("x", domain="stem"))
    texts = ["Das ist ein ganz normaler deutscher Satz über das Wetter.", "", "This is plainly English text."]
    assert f.predict_batch(texts) == [f.predict(t) for t in texts]
    docs = [_doc(t) for t in texts]
    assert [r if r is True else r[1] for r in f.filter_batch(docs)] == [
        "langid_unwanted_language",
        "langid_low_score",
        True,
    ]
    # A curated source label is kept (no score check); with trust off the model overrides it.
    d = _doc("Ovo je kratka rečenica.", lang="bs")
    assert FastTextLangId(languages=["bs"]).filter(d) is True and d.lang == "bs"
    d = _doc("This sentence is clearly written in English, not Swahili.", lang="sw")
    assert FastTextLangId(trust_source_lang=False).filter(d) is True and d.lang == "en"


def test_accuracy_on_lingua_sentences(corpora):
    rows = [json.loads(x) for x in (corpora / "multilingual_lingua_testdata/lingua_testdata_sample.jsonl").open()]
    rows = [r for r in rows if r["kind"] == "sentences"]
    preds = FastTextLangId().predict_batch(r["text"] for r in rows)
    ok, n, confused = Counter(), Counter(), Counter()
    for r, (lang, _) in zip(rows, preds):
        gold = r["lang"]
        n[gold] += 1
        ok[gold] += lang == SAME.get(gold, gold)
        if lang != SAME.get(gold, gold):
            confused[(gold, lang)] += 1
    print("\nlang  acc    (lingua sentences, lid.176)")
    for lang in sorted(n):
        print(f"{lang:4s}  {ok[lang] / n[lang]:.3f}{'  (no lid.176 label)' if lang in UNSUPPORTED else ''}")
    supported = [x for x in n if x not in UNSUPPORTED]
    acc_all = sum(ok.values()) / sum(n.values())
    acc_sup = sum(ok[x] for x in supported) / sum(n[x] for x in supported)
    print(f"overall {acc_all:.4f} ({len(n)} langs); supported {acc_sup:.4f} ({len(supported)} langs)")
    print("most confused:", confused.most_common(8))
    # Measured 0.8876 on the 67 lid.176 languages, 0.7929 on all 75 (nb counted as "no"); bound with a margin.
    assert acc_sup >= 0.87
    assert acc_all >= 0.78
    for lang in ("en", "de", "fr", "es", "ru", "zh", "ja", "ar", "hi", "ko"):
        assert ok[lang] / n[lang] >= 0.9, lang
    # the confusable South Slavic trio: Bosnian is mostly read as Croatian or Serbian
    assert confused[("bs", "hr")] + confused[("bs", "sr")] >= 10


if __name__ == "__main__":
    pytest.main([__file__, "-s", "-q"])
