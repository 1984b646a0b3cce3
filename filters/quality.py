"""Prose quality filters: Gopher quality and repetition, C4 line rules, FineWeb line rules.

Decisions are identical to datatrove 0.10's `GopherRepetitionFilter`, `GopherQualityFilter`,
`C4QualityFilter` (its line rules; the bad-words list is not used) and `FineWebQualityFilter` with the same
thresholds, run in FineWeb's order (repetition, quality, C4, FineWeb). Reasons are datatrove's, prefixed by
our filter name: `gopher_quality_short_doc`, `gopher_repetition_top_2_gram`, `c4_curly_bracket`,
`fineweb_line_punct_ratio` (datatrove's own `gopher_` prefix is replaced, see `DATATROVE_REASONS`).

Why faster than running datatrove's four filters: the expensive work is done once per document text and
shared through `ProseFeatures` (a one-document cache, since a chain passes one document through all steps):
word tokenization with the spaCy tokenizer datatrove assigns to the language (`spacy.blank`, called without
the sentencizer and without a per-call memory zone), line splits, n-gram tables. C4's sentence count is
skipped when at least `min_num_sentences` lines are kept (each kept line holds at least one sentence), and
FineWeb's words-per-newline check after C4 removed lines re-tokenizes only when a whitespace-split lower
bound cannot decide it.

Languages: the tokenizer follows `doc.lang` (or the fixed `language` argument; "en" when neither is set).
A language whose datatrove tokenizer needs a missing package (stanza, pythainlp, kiwipiepy, SudachiPy, ...) or
has none falls back to spaCy's multi-language "xx" tokenizer, datatrove's own fallback, with a warning.
Gopher's stop-word check runs only for languages in `stop_words` (English by default, as FineWeb; FineWeb-2
derives per-language lists, which we do not ship): other languages skip it.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from filters.base import Filter
from schemas import Document

logger = logging.getLogger(__name__)

# Gopher (Rae et al. 2021, arXiv 2112.11446, appendix A1) stop words, as in datatrove.
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

# (datatrove filter, datatrove reason) -> our reason; the bench and the equivalence test use it.
DATATROVE_REASONS: dict[tuple[str, str], str] = {}

_VOCAB_RESET = 500_000  # lexemes kept by a cached spaCy vocab before it is rebuilt (bounds memory)


def _reg(prefix: str, dt_reason: str, ours: str) -> str:
    DATATROVE_REASONS[(prefix, dt_reason)] = ours
    return ours


# ----------------------------------------------------------------------------------------------- tokenizers


class _Tokenizer:
    """datatrove's word tokenizer for one language, called the cheap way when it is a spaCy one."""

    def __init__(self, lang: str) -> None:
        from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_tokenizer_assignments

        factories = load_tokenizer_assignments()
        self.lang = lang
        self._factory: Callable[[], Any] = factories.get(lang) or (lambda: SpaCyTokenizer("xx"))
        if lang not in factories:
            logger.warning("no datatrove word tokenizer for %r; using spaCy 'xx'", lang)
        self._build()

    def _build(self) -> None:
        from datatrove.utils.word_tokenizers import SpaCyTokenizer

        try:
            tok = self._factory()  # some tokenizers check their dependency in __init__, others on first use
            tok.word_tokenize("probe")
        except ImportError as e:  # the assigned tokenizer needs a package we do not install
            logger.warning("word tokenizer for %r unavailable (%s); using spaCy 'xx'", self.lang, e)
            self._factory = lambda: SpaCyTokenizer("xx")
            tok = self._factory()
        self.tok = tok
        nlp = getattr(tok, "tokenizer", None) if isinstance(tok, SpaCyTokenizer) else None
        # NOTE: Japanese chunks its input (datatrove's chunk_text_on_bytes); keep datatrove's path there.
        self.spacy = nlp.tokenizer if nlp is not None and tok.language != "ja" else None
        from spacy.tokenizer import Tokenizer

        # spaCy's rule tokenizer splits on whitespace first: every whitespace-separated chunk gives >= 1 word.
        self.chunk_local = isinstance(self.spacy, Tokenizer)

    def words(self, text: str) -> list[str]:
        """Exactly datatrove's `split_into_words(text, lang)`, except that whitespace-free runs longer than
        `MAX_RUN_CHARS` are cut into pieces first (spaCy's prefix/suffix loop is quadratic in a run's length:
        a 1 MB run of "a:" would take half an hour)."""
        text = _cut_long_runs(text)
        if self.spacy is None:
            return self.tok.word_tokenize(text)
        try:
            doc = self.spacy(text)
        except Exception:
            if "IS_ALPHA" not in text:  # datatrove's workaround for a string that breaks spaCy
                raise
            doc = self.spacy(text.replace("IS_ALPHA", ""))
        out = [s for s in (t.text.strip() for t in doc) if s]
        if len(self.spacy.vocab) > _VOCAB_RESET:
            self._build()  # a fresh spacy.blank: same tokens, bounded memory
        return out


MAX_RUN_CHARS = 1000  # longer than any word; Gopher drops documents whose mean word exceeds 10 characters
_SPACE_SPLIT = re.compile(r"(\s+)")


def _cut_long_runs(text: str) -> str:
    """Cut whitespace-free runs longer than MAX_RUN_CHARS into pieces of that length (linear time)."""
    if max(map(len, text.split()), default=0) <= MAX_RUN_CHARS:
        return text
    parts = _SPACE_SPLIT.split(text)
    return "".join(
        p if len(p) <= MAX_RUN_CHARS else " ".join(p[i : i + MAX_RUN_CHARS] for i in range(0, len(p), MAX_RUN_CHARS))
        for p in parts
    )


_TOKENIZERS: dict[str, _Tokenizer] = {}


def tokenizer_for(lang: str) -> _Tokenizer:
    """The per-process tokenizer of `lang` (an ISO 639-1 or 639-3 code)."""
    if lang not in _TOKENIZERS:
        _TOKENIZERS[lang] = _Tokenizer(lang)
    return _TOKENIZERS[lang]


# ------------------------------------------------------------------------------------------ shared features


class ProseFeatures:
    """Per-document values shared by the four filters, each computed on first use.

    Args:
        text: the document text.
        lang: language whose tokenizer is used.
    """

    def __init__(self, text: str, lang: str) -> None:
        self.text = text
        self.lang = lang
        self._words: list[str] | None = None
        self.c4_cleaned: str | None = None  # text after C4's line removal, set by C4Quality

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = tokenizer_for(self.lang).words(self.text)
        return self._words


_CACHE: list[ProseFeatures] = []  # one slot: the chain runs one document through every step in turn


def features(doc: Document, language: str | None) -> ProseFeatures:
    """Shared features of `doc`, recomputed only when its text (identity) or language changed."""
    lang = language or doc.lang or "en"
    if _CACHE and _CACHE[0].text is doc.text and _CACHE[0].lang == lang:
        return _CACHE[0]
    feat = ProseFeatures(doc.text, lang)
    _CACHE[:] = [feat]
    return feat


def _find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated items, characters in repeats), as datatrove's `find_duplicates`."""
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


# -------------------------------------------------------------------------------------- Gopher repetition

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


class GopherRepetition(Filter):
    """Gopher repetition removal (Rae et al. 2021, arXiv 2112.11446, table A1), as datatrove.

    Args:
        max_dup_para_ratio: duplicate paragraphs / paragraphs (0.3).
        max_dup_para_char_ratio: characters in duplicate paragraphs / characters (0.2).
        max_dup_line_ratio: duplicate lines / lines (0.3).
        max_dup_line_char_ratio: characters in duplicate lines / characters (0.2).
        top_n_grams: (n, max ratio) of characters in the most frequent n-gram (2: 0.2, 3: 0.18, 4: 0.16).
        dup_n_grams: (n, max ratio) of characters in repeated n-grams (5: 0.15 ... 10: 0.10).
        language: tokenizer language; None follows `doc.lang`.
    """

    name = "gopher_repetition"
    domains = frozenset({"web", "stem"})

    def __init__(
        self,
        max_dup_para_ratio: float | None = 0.3,
        max_dup_para_char_ratio: float | None = 0.2,
        max_dup_line_ratio: float | None = 0.3,
        max_dup_line_char_ratio: float | None = 0.2,
        top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16)),
        dup_n_grams: tuple[tuple[int, float], ...] = (
            (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)
        ),  # fmt: skip
        language: str | None = None,
    ) -> None:
        self.max_dup_para_ratio = max_dup_para_ratio
        self.max_dup_para_char_ratio = max_dup_para_char_ratio
        self.max_dup_line_ratio = max_dup_line_ratio
        self.max_dup_line_char_ratio = max_dup_line_char_ratio
        self.top_n_grams = tuple(tuple(x) for x in top_n_grams)
        self.dup_n_grams = tuple(tuple(x) for x in dup_n_grams)
        self.language = language

    def filter(self, doc: Document) -> bool | tuple[bool, str] | tuple[bool, str, float]:
        text = doc.text
        if not text:
            return False, "gopher_repetition_empty"
        n_chars = len(text)
        paragraphs = _PARAGRAPHS.split(text.strip())
        dup, chars = _find_duplicates(paragraphs)
        if self.max_dup_para_ratio and dup / len(paragraphs) > self.max_dup_para_ratio:
            return False, "gopher_repetition_dup_para_frac", dup / len(paragraphs)
        if self.max_dup_para_char_ratio and chars / n_chars > self.max_dup_para_char_ratio:
            return False, "gopher_repetition_dup_para_char_frac", chars / n_chars
        lines = _LINES.split(text)
        dup, chars = _find_duplicates(lines)
        if self.max_dup_line_ratio and dup / len(lines) > self.max_dup_line_ratio:
            return False, "gopher_repetition_dup_line_frac", dup / len(lines)
        if self.max_dup_line_char_ratio and chars / n_chars > self.max_dup_line_char_ratio:
            return False, "gopher_repetition_dup_line_char_frac", chars / n_chars

        words = features(doc, self.language).words
        # NOTE: tokens never contain whitespace, so " ".join identity (datatrove) == tuple identity.
        ids: dict[str, int] = {}
        seq = [ids.setdefault(w, len(ids)) for w in words]
        lens = [len(w) for w in words]
        for n, max_ratio in self.top_n_grams:
            if len(words) < n:
                continue
            counts = Counter(zip(*(seq[i:] for i in range(n))))
            # most_common(1) keeps the first-inserted n-gram among ties, as Counter does in datatrove
            gram, count = max(counts.items(), key=lambda kv: kv[1])
            start = next(i for i in range(len(seq) - n + 1) if tuple(seq[i : i + n]) == gram)
            top_chars = (sum(lens[start : start + n]) + n - 1) * count
            if top_chars / n_chars > max_ratio:
                return False, f"gopher_repetition_top_{n}_gram", top_chars / n_chars
        for n, max_ratio in self.dup_n_grams:
            repeated = self._all_duplicate_chars(words, n)
            if repeated / n_chars > max_ratio:
                return False, f"gopher_repetition_duplicated_{n}_n_grams", repeated / n_chars
        return True

    @staticmethod
    def _all_duplicate_chars(words: list[str], n: int) -> int:
        """datatrove's `find_all_duplicate`: greedy count of characters in repeated n-grams (joined with "")."""
        grams = ["".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        if len(set(grams)) == len(grams):
            return 0  # no n-gram occurs twice: the greedy scan can never hit the seen set
        seen: set[str] = set()
        repeated, idx = 0, 0
        while idx < len(grams):
            g = grams[idx]
            if g in seen:
                repeated += len(g)
                idx += n
            else:
                seen.add(g)
                idx += 1
        return repeated


# ----------------------------------------------------------------------------------------- Gopher quality

_PUNCTUATION_SET: frozenset[str] | None = None


def _punctuation_set() -> frozenset[str]:
    global _PUNCTUATION_SET
    if _PUNCTUATION_SET is None:
        from datatrove.utils.text import PUNCTUATION_SET

        _PUNCTUATION_SET = frozenset(PUNCTUATION_SET)
    return _PUNCTUATION_SET


class GopherQuality(Filter):
    """Gopher quality rules (Rae et al. 2021, arXiv 2112.11446, appendix A1.1), as datatrove.

    Args:
        min_doc_words / max_doc_words: words that are not only punctuation (50 / 100,000).
        min_avg_word_length / max_avg_word_length: mean length of those words (3 / 10).
        max_symbol_word_ratio: "#" and ellipses per word (0.1).
        max_bullet_lines_ratio: lines starting with a bullet (0.9).
        max_ellipsis_lines_ratio: lines ending with an ellipsis (0.3).
        min_alpha_words_ratio: words with an alphabetic character (0.8; datatrove's `max_non_alpha_words_ratio`).
        min_stop_words: distinct stop words required (2), for languages in `stop_words` only.
        stop_words: language -> stop words; default English Gopher list only.
        language: tokenizer and stop-word language; None follows `doc.lang`.
    """

    name = "gopher_quality"
    domains = frozenset({"web", "stem"})

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: dict[str, list[str]] | None = None,
        language: str | None = None,
    ) -> None:
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        sw = {"en": list(GOPHER_STOP_WORDS)} if stop_words is None else stop_words
        self.stop_words = {lang: frozenset(words) for lang, words in sw.items()}
        self.language = language

    def filter(self, doc: Document) -> bool | tuple[bool, str] | tuple[bool, str, float]:
        text = doc.text
        feat = features(doc, self.language)
        words = feat.words
        n_words = len(words)
        punct = _punctuation_set()
        lengths = [len(w) for w in words if not punct.issuperset(w)]
        n = len(lengths)
        if self.min_doc_words and n < self.min_doc_words:
            return False, "gopher_quality_short_doc", float(n)
        if self.max_doc_words and n > self.max_doc_words:
            return False, "gopher_quality_long_doc", float(n)
        if not n_words:
            return False, "gopher_quality_short_doc", 0.0  # datatrove divides by zero here
        avg = sum(lengths) / n if n else float("nan")
        if self.min_avg_word_length and avg < self.min_avg_word_length:
            return False, "gopher_quality_below_avg_threshold", avg
        if self.max_avg_word_length and avg > self.max_avg_word_length:
            return False, "gopher_quality_above_avg_threshold", avg
        if self.max_symbol_word_ratio:
            ratio = text.count("#") / n_words
            if ratio > self.max_symbol_word_ratio:
                return False, "gopher_quality_too_many_hashes", ratio
            ratio = (text.count("...") + text.count("…")) / n_words
            if ratio > self.max_symbol_word_ratio:
                return False, "gopher_quality_too_many_ellipsis", ratio
        lines = text.splitlines() or [""]
        if self.max_bullet_lines_ratio:
            ratio = sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines)
            if ratio > self.max_bullet_lines_ratio:
                return False, "gopher_quality_too_many_bullets", ratio
        if self.max_ellipsis_lines_ratio:
            ratio = sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines)
            if ratio > self.max_ellipsis_lines_ratio:
                return False, "gopher_quality_too_many_end_ellipsis", ratio
        if self.min_alpha_words_ratio:
            ratio = sum(any(c.isalpha() for c in w) for w in words) / n_words
            if ratio < self.min_alpha_words_ratio:
                return False, "gopher_quality_below_alpha_threshold", ratio
        stop = self.stop_words.get(feat.lang)
        if self.min_stop_words and stop is not None:
            found = len(stop.intersection(words))
            if found < self.min_stop_words:
                return False, "gopher_quality_enough_stop_words", float(found)
        return True


# --------------------------------------------------------------------------------------------------- C4

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


class C4Quality(Filter):
    """C4's line rules (Raffel et al. 2020, JMLR 21(140), section 2.2), as datatrove's `C4QualityFilter`.

    Lines are dropped when a word is longer than `max_word_length`, when they lack terminal punctuation (if
    `filter_no_terminal_punct`), have fewer than `min_words_per_line` words, mention javascript or a cookie /
    terms policy; wikipedia citations are removed; the document is dropped for "lorem ipsum", a curly bracket
    or fewer than `min_num_sentences` sentences in the kept lines. The bad-words list is not used.

    NOTE: datatrove writes the kept lines back into `doc.text` (FineWeb's text is the cleaned one, and
    FineWebQuality then judges it). `remove_lines=True` does the same, so the whole chain's decisions and
    texts match datatrove's; False leaves the text alone (the check is then a pure filter).

    Args:
        filter_no_terminal_punct: drop lines without terminal punctuation (C4: True; FineWeb: False).
        min_num_sentences: sentences required in kept lines (5); None turns it off.
        min_words_per_line: words a line needs (3); None turns it off.
        max_word_length: longest word a line may hold (1000); None turns it off.
        filter_lorem_ipsum, filter_javascript, filter_curly_bracket, filter_policy, remove_citations: switches.
        remove_lines: write the kept lines back into `doc.text`, as datatrove.
        language: sentence-splitter language; None follows `doc.lang`.
    """

    name = "c4"
    domains = frozenset({"web", "stem"})

    def __init__(
        self,
        filter_no_terminal_punct: bool = True,
        min_num_sentences: int | None = 5,
        min_words_per_line: int | None = 3,
        max_word_length: int | None = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        remove_citations: bool = True,
        remove_lines: bool = True,
        language: str | None = None,
    ) -> None:
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy
        self.remove_citations = remove_citations
        self.remove_lines = remove_lines
        self.language = language

    def filter(self, doc: Document) -> bool | tuple[bool, str] | tuple[bool, str, float]:
        kept: list[str] = []
        for line in doc.text.splitlines():
            line = line.strip()
            words = line.split()
            if self.max_word_length is not None and any(len(w) > self.max_word_length for w in words):
                continue
            if self.remove_citations:
                line = _CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                continue
            if self.min_words_per_line is not None and len(words) < self.min_words_per_line:
                continue
            lower = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lower:
                return False, "c4_lorem_ipsum"
            if self.filter_javascript and "javascript" in lower:
                continue
            if self.filter_curly_bracket and "{" in line:
                return False, "c4_curly_bracket"
            if self.filter_policy and any(p in lower for p in _POLICY):
                continue
            kept.append(line)
        if self.min_num_sentences is not None and self.min_num_sentences > 0 and len(kept) < self.min_num_sentences:
            # Each kept line counts at least one sentence, so only short documents need the splitter.
            from datatrove.utils.text import split_into_sentences

            lang = features(doc, self.language).lang
            tok_lang = tokenizer_for(lang).tok  # datatrove tokenizer with our fallback for missing packages
            n_sent = sum(len(split_into_sentences(line, tok_lang)) for line in kept)
            if n_sent < self.min_num_sentences:
                return False, "c4_too_few_sentences", float(n_sent)
        if self.remove_lines:
            feat = features(doc, self.language)
            cleaned = "\n".join(kept).strip()
            if cleaned != doc.text:
                doc.text = cleaned
                new = ProseFeatures(cleaned, feat.lang)
                new.c4_cleaned = cleaned
                _CACHE[:] = [new]
        return True


# ----------------------------------------------------------------------------------------------- FineWeb

_TERMINAL: tuple[str, ...] | None = None


def _terminal_punctuation() -> tuple[str, ...]:
    global _TERMINAL
    if _TERMINAL is None:
        from datatrove.utils.text import TERMINAL_PUNCTUATION

        _TERMINAL = tuple(TERMINAL_PUNCTUATION)
    return _TERMINAL


class FineWebQuality(Filter):
    """FineWeb's own line rules (Penedo et al. 2024, arXiv 2406.17557, section 3.3.3), as datatrove.

    Args:
        min_line_punct_ratio: lines ending in terminal punctuation (0.12).
        line_punct_exclude_zero: do not drop documents with no such line at all.
        max_short_line_ratio: lines of at most `short_line_length` characters (0.67 of lines, 30 chars).
        short_line_length: see above.
        max_char_dup_ratio: characters in duplicated lines / characters (0.01).
        max_newline_ratio: newlines per word (0.3, "list_ratio").
        stop_chars: line endings counted as punctuation; default datatrove's TERMINAL_PUNCTUATION.
        language: tokenizer language; None follows `doc.lang`.
    """

    name = "fineweb"
    domains = frozenset({"web", "stem"})

    def __init__(
        self,
        min_line_punct_ratio: float | None = 0.12,
        line_punct_exclude_zero: bool = False,
        max_short_line_ratio: float | None = 0.67,
        short_line_length: int = 30,
        max_char_dup_ratio: float | None = 0.01,
        max_newline_ratio: float | None = 0.3,
        stop_chars: tuple[str, ...] | None = None,
        language: str | None = None,
    ) -> None:
        self.min_line_punct_ratio = min_line_punct_ratio
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.max_short_line_ratio = max_short_line_ratio
        self.short_line_length = short_line_length
        self.max_char_dup_ratio = max_char_dup_ratio
        self.max_newline_ratio = max_newline_ratio
        self.stop_chars = tuple(stop_chars) if stop_chars is not None else None
        self.language = language

    def filter(self, doc: Document) -> bool | tuple[bool, str] | tuple[bool, str, float]:
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return False, "fineweb_empty"
        stop = self.stop_chars or _terminal_punctuation()
        if self.min_line_punct_ratio is not None:
            ratio = sum(1 for line in lines if line.endswith(stop)) / len(lines)
            if ratio < self.min_line_punct_ratio and not (ratio == 0 and self.line_punct_exclude_zero):
                return False, "fineweb_line_punct_ratio", ratio
        if self.max_short_line_ratio is not None:
            ratio = sum(1 for line in lines if len(line) <= self.short_line_length) / len(lines)
            if ratio > self.max_short_line_ratio:
                return False, "fineweb_short_line_ratio", ratio
        if self.max_char_dup_ratio is not None:
            ratio = _find_duplicates(lines)[1] / len(text.replace("\n", ""))
            if ratio > self.max_char_dup_ratio:
                return False, "fineweb_char_dup_ratio", ratio
        if self.max_newline_ratio is not None:
            newlines = text.count("\n")
            # Every whitespace-separated chunk yields at least one token: a lower bound on the word count
            # that decides most documents without tokenizing (again, after C4 removed lines).
            feat = features(doc, self.language)
            if not tokenizer_for(feat.lang).chunk_local or newlines / len(text.split()) > self.max_newline_ratio:
                ratio = newlines / len(feat.words)
                if ratio > self.max_newline_ratio:
                    return False, "fineweb_list_ratio", ratio
        return True


# Reason map for comparisons with datatrove (its reasons are not prefixed by filter).
for _r in ("short_doc", "long_doc", "below_avg_threshold", "above_avg_threshold", "too_many_hashes",
           "too_many_ellipsis", "too_many_bullets", "too_many_end_ellipsis", "below_alpha_threshold",
           "enough_stop_words"):  # fmt: skip
    _reg("gopher_quality", f"gopher_{_r}", f"gopher_quality_{_r}")
for _r in ("empty", "dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac", "top_2_gram",
           "top_3_gram", "top_4_gram", *(f"duplicated_{n}_n_grams" for n in range(5, 11))):  # fmt: skip
    _reg("gopher_repetition", _r, f"gopher_repetition_{_r}")
for _r in ("lorem_ipsum", "curly_bracket", "too_few_sentences"):
    _reg("c4", _r, f"c4_{_r}")
for _r in ("empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio"):
    _reg("fineweb", _r, f"fineweb_{_r}")

PROSE_FILTERS = (GopherRepetition, GopherQuality, C4Quality, FineWebQuality)  # FineWeb's order
