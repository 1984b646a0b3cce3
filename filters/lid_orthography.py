"""Languages that share a script and that the shipped language-ID models cannot tell apart, decided by spelling.

The cascade's models (lid.176, py3langid, CLD3, lingua) each know a different set of languages, and for a few
families none knows every member, so whatever the text, the vote lands on the one member they know:

| script | models say | also written in it | what tells them apart (this module) |
|---|---|---|---|
| Ethiopic | am (all four) | ti (no model) | Tigrinya function words (ኣብ, ናይ, እዩ, ካብ, ...) and its letters ቐ, ኸ (sounds Amharic lacks) |
| Tibetan | dz (py3langid), bo (lid.176) | - | Dzongkha function syllables (ལུ, ཚུ, ཨིན, ཡོདཔ, སྦེ, འབད) vs Tibetan (རྣམས, ཡིན, རེད, ཚོ, ...) |
| Greek | el (lid.176, CLD3, lingua), grc (py3langid) | - | words only Ancient (γάρ, μέν, οὖν, οὐκ, ἦν, dative τῷ/τοῖς) or only Modern Greek has (να, θα, δεν, για, στο) |
| Latin (West/South Slavic) | pl, cs, bs, ... | hsb, dsb (lid.176 only, weakly) | ł and ě together: Polish has no ě, Czech no ł; then ř (Upper) vs ś/ŕ (Lower Sorbian) |
| Latin (Sotho-Tswana) | nso (py3langid) | tn (lingua only) | š: Northern Sotho writes it (ša, tša), Tswana does not |

Each rule runs only on a prediction in its family (`refine`), costs one pass over the text, and keeps the models'
choice when the text gives no evidence. The marker lists are grammar (copulas, case markers, articles), written
here by hand; the frequent words of FineWeb-2's per-language configurations and word lists (huggingface/fineweb-2
`configs/*.yml`, `misc/precision_filtering/wordlists-0.85/`) agree with them. Checked on UDHR texts (shared corpora:
article 1 of am, ti, bo, dz, el, hsb; the full am, ti and bo texts line by line: 80 of 81, 51 of 90 and 50 of 91
lines decided by their markers, all rightly, the rest holding none or as many of each), on spaCy's example pages
(am, ti, bo, grc, el, tn, hsb, dsb) and on 130 Modern Greek, Polish, Czech and Tswana sentences each of lingua's test
data (no rule fires wrongly on them); the tests hold real text of each script.

Text mostly in a script none of the models was trained on (Thaana, Cherokee, Canadian syllabics, Tifinagh, ...)
got a label by chance ("vi" for Dhivehi, "am" for Inuktitut); `unknown_script` names the script's language where
one language writes it (dv, chr, ii, vai, jv) and labels the rest "und-<script>" with score 0 (dropped as unsure).

NOTE: Bosnian vs Croatian is not here: their standard texts can be identical (UDHR article 1 is, letter for
letter), so no spelling rule can separate them; they stay a confusable group (`lid_models.GROUPS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import regex

# --- Ethiopic: Amharic or Tigrinya ------------------------------------------------------------------------------

# Copulas, prepositions, demonstratives and conjunctions (as whole words).
_TIGRINYA_WORDS = frozenset(
    "እዩ ኢዩ እያ ኢያ እዮም ኢዮም እየ ኣሎ ኣለዉ ኣብ ናይ ካብ ናብ ምስ ድማ እውን እቲ እታ እቶም እተን እዚ እዛ እዞም ከም ወይ ዝኾነ ኮይኑ ነቲ".split()
)
_AMHARIC_WORDS = frozenset("ነው ናቸው ነበር ነበሩ እና ላይ ወደ ውስጥ ጋር ይህ ይህን ይህም እንደ ወይም ሁሉ ሁሉም አንድ ሲሆን የሆነ ማንኛውም".split())
# ቐ (qʰ) and ኸ (x) series: consonants of Tigrinya that Amharic does not have (UDHR: 115 in Tigrinya, 0 in Amharic).
_TIGRINYA_LETTERS = re.compile(r"[\u1250-\u125d\u12b8-\u12c5]")
# Ethiopic word space and punctuation (፡ ። ፣ ፤ ፥ ፦ ፧ ፨) separate words as spaces do.
_ETHIOPIC_SPLIT = re.compile(r"[\s\u1361-\u1368]+")


def amharic_or_tigrinya(text: str) -> str:
    """ "ti" when Tigrinya's words and letters outnumber Amharic's words, else "am"."""
    words = Counter(_ETHIOPIC_SPLIT.split(text))
    tigrinya = sum(words[w] for w in _TIGRINYA_WORDS) + len(_TIGRINYA_LETTERS.findall(text))
    amharic = sum(words[w] for w in _AMHARIC_WORDS)
    return "ti" if tigrinya > amharic else "am"


# --- Tibetan script: Tibetan or Dzongkha -----------------------------------------------------------------------

# Syllables (between tsheg ་ and shad །): Dzongkha's dative ལུ, plural ཚུ, copulas ཨིན/ཨིནམ, ཡོདཔ, adverbial སྦེ,
# verb འབད 'do'; Tibetan's plural རྣམས/ཚོ, copulas ཡིན/རེད, terminative དུ/ཏུ, topic ནི, verb བྱེད 'do'.
_DZONGKHA_SYLLABLES = frozenset("ལུ ཚུ ཨིན ཨིནམ ཡོདཔ སྦེ འབད འབདཝ ལཱ མས ནུག བཟུམ".split())
_TIBETAN_SYLLABLES = frozenset("རྣམས ཡིན རེད ཚོ ཚོས ཚོའི ཚོར དུ ཏུ ནི བྱེད ཞིག གནང".split())
_TIBETAN_SPLIT = re.compile(r"[\s\u0f00-\u0f14]+")


def tibetan_or_dzongkha(text: str) -> str:
    """ "dz" when Dzongkha's syllables outnumber Tibetan's, else "bo" (the larger language: no evidence, Tibetan)."""
    syllables = Counter(_TIBETAN_SPLIT.split(text))
    dzongkha = sum(syllables[s] for s in _DZONGKHA_SYLLABLES)
    tibetan = sum(syllables[s] for s in _TIBETAN_SYLLABLES)
    return "dz" if dzongkha > tibetan else "bo"


# --- Greek: Modern or Ancient ----------------------------------------------------------------------------------

# Compared without accents, lower case, final sigma as σ. Ancient only: particles, ἦν 'was', εἶπεν, dative plural
# and τῷ (Modern Greek has no dative). Modern only: να, θα, δεν, για, the contracted στο/στην, ήταν, μας/σας.
_ANCIENT_WORDS = frozenset("γαρ μεν ουν ουκ ουχ ουδε δη εστι εστιν ην τω τοισ ταισ ειπεν ινα ημιν υμιν".split())
_MODERN_WORDS = frozenset(
    "να θα δεν για στο στον στην στη στα στισ στουσ ηταν μασ σασ οποιοσ οποια οποιο οποιεσ οποιων οποιουσ".split()
)
# Breathings, circumflex and iota subscript as combining marks (after NFD): polytonic spelling, which Ancient Greek
# editions always use and Modern Greek has used only before 1982 (and in some churches and literature).
_POLYTONIC_MARKS = frozenset("\u0313\u0314\u0342\u0345")
_GREEK_WORD = re.compile(r"[α-ω]+")
_POLYTONIC_MIN_PER_WORD = 0.2  # UDHR: Modern monotonic 0.0005 marks per word, polytonic 0.44, Plato 1.1


def modern_or_ancient_greek(text: str) -> str:
    """ "grc" when Ancient Greek's words outnumber Modern Greek's, or neither occurs and the text is polytonic."""
    decomposed = unicodedata.normalize("NFD", text)
    polytonic = sum(ch in _POLYTONIC_MARKS for ch in decomposed)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower().replace("ς", "σ")
    words = Counter(_GREEK_WORD.findall(bare))
    ancient = sum(words[w] for w in _ANCIENT_WORDS)
    modern = sum(words[w] for w in _MODERN_WORDS)
    if ancient != modern:
        return "grc" if ancient > modern else "el"
    n_words = sum(words.values())
    return "grc" if n_words and polytonic / n_words >= _POLYTONIC_MIN_PER_WORD else "el"


# --- Latin script: Sorbian among Polish and Czech ---------------------------------------------------------------


# Sorbian text is read as one of these (spaCy's Sorbian examples: Polish, Bosnian); none of them spells with both ł
# and ě (Slovak, Slovene and the Serbo-Croatian standards have neither).
_SLAVIC_LATIN = frozenset({"pl", "cs", "sk", "sl", "hr", "bs", "sr"})


def sorbian(lang: str, text: str) -> str:
    """ "hsb" / "dsb" when the text spells with both ł and ě (Sorbian; Polish has no ě, Czech no ł), else `lang`.

    Upper Sorbian writes ř (přez, při), Lower Sorbian ś and ŕ (pśez, pśi): the one with more of its letters wins,
    Upper Sorbian (the larger) on a tie.
    """
    low = text.lower()
    if "ł" not in low or "ě" not in low:
        return lang
    return "dsb" if low.count("ś") + low.count("ŕ") > low.count("ř") else "hsb"


# --- Latin script: Northern Sotho or Tswana ---------------------------------------------------------------------


def northern_sotho_or_tswana(text: str) -> str:
    """ "nso" when the text has š (Northern Sotho's concords ša, tša, šo), else "tn"."""
    return "nso" if "š" in text.lower() else "tn"


# --- scripts no model reads ------------------------------------------------------------------------------------

# The scripts the models were trained on. Text mostly in another script gets a label by chance from them ("am" for
# Canadian syllabics and Mongolian, "ko" for Cherokee, Vai and Syriac, "vi" for Thaana, "ne" for Tifinagh in the UDHR).
_MODEL_SCRIPTS = (
    "Latin Cyrillic Greek Arabic Hebrew Armenian Georgian Devanagari Bengali Gurmukhi Gujarati Oriya Tamil Telugu "
    "Kannada Malayalam Sinhala Thai Lao Tibetan Myanmar Khmer Ethiopic Han Hiragana Katakana Hangul Bopomofo"
).split()
_OTHER_LETTER = regex.compile(r"[\p{L}--[" + "".join(f"\\p{{{s}}}" for s in _MODEL_SCRIPTS) + "]]", regex.V1)
_LETTER = regex.compile(r"\p{L}")
# Unicode name prefix of a letter -> (ISO 15924 code, the language when one language is written in the script). A
# script not listed is labelled by its Unicode name ("und-Tai" for Tai Tham or Tai Viet).
SCRIPTS: dict[str, tuple[str, str | None]] = {
    "THAANA": ("Thaa", "dv"),  # Dhivehi only
    "CHEROKEE": ("Cher", "chr"),
    "YI": ("Yiii", "ii"),  # Nuosu (Sichuan Yi)
    "VAI": ("Vaii", "vai"),
    "JAVANESE": ("Java", "jv"),  # NOTE: jv's FineWeb-2 row is for Latin-script Javanese
    "ADLAM": ("Adlm", None),  # Fula, whose FineWeb-2 row (and stop words) is for its Latin spelling
    "NKO": ("Nkoo", None),  # Manding languages
    "CANADIAN": ("Cans", None),  # Inuktitut, Cree, Ojibwe
    "MONGOLIAN": ("Mong", None),  # Mongolian, Manchu, Sibe
    "TIFINAGH": ("Tfng", None),  # Berber languages
    "SYRIAC": ("Syrc", None),
    "TAGALOG": ("Tglg", None),
    "GRANTHA": ("Gran", None),
    "CHAKMA": ("Cakm", None),
    "OL": ("Olck", None),  # Ol Chiki: Santali
}
# The labels only these rules return (no model votes for them).
LABELS = frozenset({"ti", "bo", "hsb", "dsb"} | {language for _, language in SCRIPTS.values() if language})


def unknown_script(text: str) -> tuple[str, float] | None:
    """(label, share) when most letters of `text` are in a script no model reads, else None.

    The label is the script's language where one language writes it ("dv" for Thaana), else "und-<script>"
    ("und-Cans"); share is the fraction of the text's letters in that script (the label's score; 0 for "und-...", so
    the filter drops it as unsure). One regex pass on text in the models' scripts (nearly every document).
    """
    others = _OTHER_LETTER.findall(text)
    if not others or 2 * len(others) <= len(_LETTER.findall(text)):
        return None
    names = Counter(unicodedata.name(ch, "?").split()[0] for ch in others)
    name, count = names.most_common(1)[0]
    code, language = SCRIPTS.get(name, (name.title(), None))
    share = count / len(_LETTER.findall(text))
    return (language, round(share, 3)) if language else (f"und-{code}", 0.0)


# --- the dispatcher --------------------------------------------------------------------------------------------


def refine(lang: str, text: str) -> str:
    """The cascade's `lang` for `text`, or the member of its script family that the spelling points to.

    Args:
        lang: the cascade's label (without script suffix).
        text: the prose the models read.
    """
    if lang in ("am", "ti"):
        return amharic_or_tigrinya(text)
    if lang in ("bo", "dz"):
        return tibetan_or_dzongkha(text)
    if lang in ("el", "grc"):
        return modern_or_ancient_greek(text)
    if lang in _SLAVIC_LATIN:
        return sorbian(lang, text)
    if lang in ("nso", "tn"):
        return northern_sotho_or_tswana(text)
    return lang
