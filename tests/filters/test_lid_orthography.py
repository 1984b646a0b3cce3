"""filters.lid_orthography: languages the models cannot split, settled by spelling, on real text of each script
(UDHR article 1 translations; the Gospel of John and Plato's Apology for Ancient Greek), through `LangId`."""

from __future__ import annotations

import pytest

from filters import lid_models, lid_orthography
from filters.langid import LangId
from schemas import Document

# UDHR article 1 (OHCHR translations, as in the UDHR in Unicode project) unless said otherwise.
TEXTS = {
    "am": "የሰው፡ልጅ፡ሁሉ፡ሲወለድ፡ነጻና፡በክብርና፡በመብትም፡እኩልነት፡ያለው፡ነው።፡የተፈጥሮ፡ማስተዋልና፡ሕሊና፡ስላለው፡አንዱ፡ሌላውን፡በወንድማማችነት፡መንፈስ፡መመልከት፡ይገባዋል።",
    "ti": "ብመንፅር ክብርን መሰልን ኩሎም ሰባት እንትውለዱ ነፃን ማዕሪን እዮም፡፡ ምስትውዓልን ሕልናን ዝተዓደሎም ብምዃኖም ንሕድሕዶም ብሕውነታዊ መንፈስ ክተሓላለዩ ኦለዎም፡፡",
    "bo": "འགྲོ་བ་མིའི་རིགས་རྒྱུད་ཡོངས་ལ་སྐྱེས་ཙམ་ཉིད་ནས་ཆེ་མཐོངས་དང༌། ཐོབ་ཐངགི་རང་དབང་འདྲ་མཉམ་དུ་ཡོད་ལ། "
    "ཁོང་ཚོར་རང་བྱུང་གི་བློ་རྩལ་དང་བསམ་ཚུལ་བཟང་པོ་འདོན་པའི་འོས་བབས་ཀྱང་ཡོད། དེ་བཞིན་ཕན་ཚུན་གཅིག་གིས་གཅིག་ལ་བུ་སྤུན་གྱི་"
    "འདུ་ཤེས་འཛིན་པའི་བྱ་སྤྱོད་ཀྱང་ལག་ལེན་བསྟར་དགོས་པ་ཡིན༎",
    "dz": "འགྲོ་བ་མི་ཚུ་ག་ར་དལ་དབང་གི་ཐོག་ལས་སྐྱེས་ཏེ་ཡོདཔ་ལས་ ག་ར་ལུ་བརྩི་མཐོང་དང་ཐོབ་དབང་འདྲ་མཉམ་སྦེ་ཡོད། "
    "མི་ཚུ་ག་ར་སྨྲ་ཤེས་དོན་གོ་བའི་མཚན་ཉིད་དང་ལྡནམ་ལས་ ག་ར་གིས་ལཱ་ག་ཅི་ར་འབད་རུང་ གཅིག་གིས་གཅིག་ལུ་སྤུན་ཆའི་འདུ་ཤེས་"
    "བསྐྱེད་ཐོག་ལས་ལཱ་འབད་དགོ།",
    "el": "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα. Είναι προικισμένοι με "
    "λογική και συνείδηση, και οφείλουν να συμπεριφέρονται μεταξύ τους με πνεύμα αδελφοσύνης.",
    # Modern Greek in the polytonic spelling used before 1982: still Modern Greek.
    "el-polytonic": "Ὅλοι οἱ ἄνθρωποι γεννιοῦνται ἐλεύθεροι καὶ ἴσοι στὴν ἀξιοπρέπεια καὶ τὰ δικαιώματα. Εἶναι "
    "προικισμένοι μὲ λογικὴ καὶ συνείδηση, καὶ ὀφείλουν νὰ συμπεριφέρονται μεταξύ τους μὲ πνεῦμα ἀδελφοσύνης.",
    "grc-john": "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν, καὶ θεὸς ἦν ὁ λόγος. οὗτος ἦν ἐν ἀρχῇ πρὸς τὸν "
    "θεόν. πάντα δι’ αὐτοῦ ἐγένετο, καὶ χωρὶς αὐτοῦ ἐγένετο οὐδὲ ἕν ὃ γέγονεν.",
    "grc-plato": "Ὅτι μὲν ὑμεῖς, ὦ ἄνδρες Ἀθηναῖοι, πεπόνθατε ὑπὸ τῶν ἐμῶν κατηγόρων, οὐκ οἶδα· ἐγὼ δ’ οὖν καὶ αὐτὸς "
    "ὑπ’ αὐτῶν ὀλίγου ἐμαυτοῦ ἐπελαθόμην, οὕτω πιθανῶς ἔλεγον.",
    "hsb": "Wšitcy čłowjekojo su wot naroda swobodni a su jenacy po dostojnosći a prawach. Woni su z rozumom a "
    "swědomjom wobdarjeni a maja mjezsobu w duchu bratrowstwa wobchadźeć.",
    "pl": "Wszyscy ludzie rodzą się wolni i równi pod względem swej godności i swych praw. Są oni obdarzeni rozumem i "
    "sumieniem i powinni postępować wobec innych w duchu braterstwa.",
    "cs": "Všichni lidé rodí se svobodní a sobě rovní co do důstojnosti a práv. Jsou nadáni rozumem a svědomím a mají "
    "spolu jednat v duchu bratrství.",
    "nso": "Batho ka moka ba belegwe ba lokologile le gona ba na le seriti sa go lekana le ditokelo. Ba filwe monagano "
    "le letswalo mme ba swanetše go swarana ka moya wa bana ba mpa.",
    "tn": "Batho botlhe ba tsetswe ba gololosegile le go lekalekana ka seriti le ditshwanelo. Ba abetswe go akanya le "
    "maikutlo, mme ba tshwanetse go direlana ka mowa wa bokaulengwe.",
}


def test_each_script_family_gets_its_own_language():
    docs = [Document(id=k, text=t, source="t", domain="web") for k, t in TEXTS.items()]
    results = LangId().filter_batch(docs)
    assert {d.id: d.lang for d in docs} == {k: k.split("-")[0] for k in TEXTS}
    assert all(r is True for r in results), results  # the models' score is kept: none falls under 0.65


def test_spelling_is_what_decided():
    # Without the rules every model names the one member it knows; the label says when spelling overrode them.
    preds = dict(zip(TEXTS, lid_models.cascade_batch(list(TEXTS.values()))))
    for lang in ("ti", "bo", "hsb"):
        assert preds[lang].models.endswith("+spelling"), (lang, preds[lang])
    for lang in ("am", "dz", "el", "el-polytonic", "pl", "cs", "tn"):
        assert "+spelling" not in preds[lang].models, (lang, preds[lang])


@pytest.mark.parametrize(
    "rule, text, expected",
    [
        (lid_orthography.amharic_or_tigrinya, "ኣብ ከተማ ናይ ሓደ ሰብ እዩ።", "ti"),
        (lid_orthography.amharic_or_tigrinya, "ይህ ቤት ትልቅ ነው።", "am"),
        (lid_orthography.amharic_or_tigrinya, "ሰላም", "am"),  # no evidence: the models' Amharic
        (lid_orthography.tibetan_or_dzongkha, "ང་", "bo"),  # no evidence: Tibetan
        (lid_orthography.modern_or_ancient_greek, "Μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος", "grc"),  # Iliad 1.1: polytonic
        (lid_orthography.modern_or_ancient_greek, "εν αρχη ην ο λογος και ο λογος ην προς τον θεον", "grc"),
        (lid_orthography.modern_or_ancient_greek, "Δεν θα πάω στο σπίτι", "el"),
    ],
)
def test_rules_on_short_text(rule, text, expected):
    assert rule(text) == expected


def test_sorbian_needs_both_letters():
    assert lid_orthography.sorbian("pl", "Łódź jest dużym miastem.") == "pl"  # ł without ě
    assert lid_orthography.sorbian("cs", "Město je velké.") == "cs"  # ě without ł
    # Words of each language (frequent in FineWeb-2's Sorbian word lists): Lower Sorbian ś, Upper Sorbian ř.
    assert lid_orthography.sorbian("pl", "dłujkosć wót lěśe pśez") == "dsb"
    assert lid_orthography.sorbian("cs", "dołhosć přez lěće hišće") == "hsb"
    assert {"ti", "bo", "hsb", "dsb", "grc", "dz", "nso", "tn"} <= lid_models.LABELS


def test_scripts_no_model_reads_get_their_language_or_und():
    # UDHR article 1 in Dhivehi (Thaana), Cherokee and Inuktitut (Canadian syllabics): the models said "vi", "ko" and
    # "am"; the script says Dhivehi and Cherokee, and that Inuktitut's script is shared (Cree, Ojibwe): unknown.
    texts = {
        "dv": "ހުރިހާ އިންސާނުންވެސް ދުނިޔެއަށް އުފަންވަނީ، މިނިވަންކަމުގައި، ހަމަހަމަ ޙައްޤުތަކަކާއެކު، ހަމަހަމަ ދަރަޖައެއްގައި ކަމޭހިތެވިގެންވާ ބައެއްގެ ގޮތުގައެވެ.",
        "chr": "Ꮒꭶꮣ ꭰꮒᏼꮻ ꭴꮎꮥꮕꭲ ꭴꮎꮪꮣꮄꮣ ꭰꮄ ꭱꮷꮃꭽꮙ ꮎꭲ ꭰꮲꮙꮩꮧ ꭰꮄ ꭴꮒꮂ ꭲᏻꮎꮫꮧꭲ.",
        "und-Cans": "ᐃᓅᔪᓕᒫᑦ ᐊᓂᖅᑎᕆᔪᓕᒫᑦ ᐃᓅᓚᐅᕐᒪᑕ ᐃᓱᒪᕐᓱᕐᖢᑎᒃ ᐊᒻᒪᓗ ᐊᔾᔨᐅᖃᑎᒌᒃᖢᑎᒃ ᓂᕐᓱᐊᖑᓂᒃᑯᑦ ᐊᒻᒪᓗ ᐱᔪᓐᓇᐃᑎᑎᒍᑦ.",
    }
    docs = [Document(id=k, text=t, source="t", domain="web") for k, t in texts.items()]
    results = LangId().filter_batch(docs)
    assert [d.lang for d in docs] == list(texts)
    assert results[:2] == [True, True] and results[2] == (False, "langid_low_score", 0.0)
    assert lid_orthography.unknown_script("Mostly Latin text with one word ދުނިޔެ in Thaana.") is None


def test_spacy_example_sentences_of_each_family():
    # spaCy's example sentences (pip-shipped; one page per language, as the default sources read them). NOTE: its
    # "hsb" examples are Lower Sorbian (pśi, wót, jo) and its "dsb" ones mostly Upper Sorbian (přez, tež, so).
    import ast
    import importlib.util
    from pathlib import Path

    def page(code: str) -> str:
        path = Path(importlib.util.find_spec(f"spacy.lang.{code}").origin).parent / "examples.py"
        node = next(n for n in ast.parse(path.read_text("utf-8")).body if isinstance(n, ast.Assign))
        return "\n".join(ast.literal_eval(node.value))

    codes = ("am", "ti", "bo", "grc", "el", "tn", "pl", "cs", "hsb", "dsb")
    docs = [Document(id=c, text=page(c), source="t", domain="web") for c in codes]
    LangId().filter_batch(docs)
    labels = {d.id: d.lang for d in docs}
    assert {c: labels[c] for c in codes[:8]} == {c: c for c in codes[:8]}
    assert (labels["hsb"], labels["dsb"]) == ("dsb", "hsb")
