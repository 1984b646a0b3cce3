"""Text features shared by the prose filters, computed once per document of a batch.

The expensive work of the Gopher, C4 and FineWeb filters is word tokenization with the spaCy tokenizer datatrove
assigns to the language (`spacy.blank`, called without the sentencizer and without a per-call memory zone).
`run_chain` creates one `TextFeatures` per batch of documents and hands it to every step's `filter_batch`,
so the four filters tokenize each text once; a filter called on its own (`filter(doc)`) makes a fresh one.
Features are keyed by document and checked against the text object, so a step that changes the text (C4's line
removal, a redaction) gets features of the new text.

Languages: the tokenizer follows `doc.lang` (or a filter's fixed `language`; "en" when neither is set; a label with
a script, "zh-Hant" or "sr-Cyrl", uses its language's). Scripts written without spaces (Han, kana, Thai, Lao, Khmer,
Myanmar, Tibetan), Ethiopic, whose words a wordspace "፡" separates, and Korean use `filters.segmenters` (ICU's
dictionary segmentation, a syllable rule for Tibetan, mecab-ko's morphemes). Other languages use datatrove's assigned
tokenizer; one that needs a package we do not install (stanza, indic-nlp-library, pyvi) or has none takes the
fallback rule set of `filters.segmenters.FallbackTokenizer` (spaCy's multi-language "xx", datatrove's own fallback,
with punctuation and joiners at word edges split off): every script that takes it separates words with spaces (Latin,
Cyrillic, Arabic, Indic).

Sentences (`_Tokenizer.sentences`, C4's count): English is datatrove's `split_into_sentences` exactly; other
languages that keep a spaCy tokenizer also end a sentence at a non-ASCII sign spaCy left inside a word (Armenian
"։"), see `filters.segmenters.split_glued_sentence_ends`.

The filters that use these features derive from `filters.prose_filter.ProseFilter` (which also reads the
per-language thresholds); this module imports no filter, so `filters.base.run_chain` can hold a `TextFeatures` per
batch without an import cycle.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from filters.lang_codes import normalize_lang
from schemas import Document

logger = logging.getLogger(__name__)

_VOCAB_RESET = 500_000  # lexemes kept by a cached spaCy vocab before it is rebuilt (bounds memory)
_CHUNK_CACHE_SIZE = 200_000  # whitespace-separated chunks whose words a tokenizer keeps (~30 MB)


# ----------------------------------------------------------------------------------------------- tokenizers


def import_spacy_without_torch() -> None:
    """Import spaCy with thinc seeing no torch: thinc imports torch at start-up only to offer its PyTorch layers,
    which blank tokenizers never use, and that import is most of spaCy's (1.3 s against 2.4 s on this machine, in
    every process and worker that filters). `import torch` raises ImportError while `sys.modules["torch"]` is None;
    the entry is removed again, so a later `import torch` (the trainer, the perplexity scorer) works as usual.
    A process that holds torch or thinc already gets them as they are. (Public: `flows.stage` imports spaCy this
    way ahead of the filter step, while the private Prefect server boots.)"""
    import importlib
    import sys

    if any(name in sys.modules for name in ("spacy", "thinc", "torch")):
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("spacy")
    finally:
        del sys.modules["torch"]


class _Tokenizer:
    """datatrove's word tokenizer for one language, called the cheap way when it is a spaCy one."""

    def __init__(self, lang: str) -> None:
        import_spacy_without_torch()
        from datatrove.utils.word_tokenizers import load_tokenizer_assignments

        from filters.segmenters import FallbackTokenizer, segmenter_for

        factories = load_tokenizer_assignments()
        self.lang = lang
        base = normalize_lang(lang) or lang
        if segmenter_for(base) is not None:
            self._factory: Callable[[], Any] = lambda: segmenter_for(base)
        elif lang in factories or base in factories:
            self._factory = factories.get(lang) or factories[base]
        else:
            logger.debug("no datatrove word tokenizer for %r; using the fallback rule set", lang)
            self._factory = lambda: FallbackTokenizer(lang)
        self._build()

    def _build(self) -> None:
        from filters.segmenters import (
            EthiopicTokenizer,
            FallbackTokenizer,
            IcuTokenizer,
            ScriptSegmenter,
            TibetanSyllableTokenizer,
        )

        try:
            tok = self._factory()  # some tokenizers check their dependency in __init__, others on first use
            tok.word_tokenize("probe")
        except ImportError as e:  # the assigned tokenizer needs a package we do not install
            logger.debug("word tokenizer for %r unavailable (%s); using the fallback rule set", self.lang, e)
            self._factory = lambda: FallbackTokenizer(self.lang)
            tok = self._factory()
        from datatrove.utils.word_tokenizers import SpaCyTokenizer

        self.tok = tok
        self._chunk_cache: dict[str, tuple[str, ...]] = {}  # chunk -> its words (`_chunk_words`)
        # No segmenter of its own: the funnel counts the documents that took the fallback rule set.
        self.fallback = isinstance(tok, FallbackTokenizer)
        # Ethiopic: the wordspace becomes a space, then the language's spaCy tokenizer runs (on the fast path below)
        self.prepare: Callable[[str], str] | None = tok.prepare if isinstance(tok, EthiopicTokenizer) else None
        # The fallback: "xx"'s tokens, then its character rules (on the fast path below too)
        self.finish: Callable[[list[str]], list[str]] | None = tok.finish if self.fallback else None
        spacy_tok = tok.inner if isinstance(tok, EthiopicTokenizer | FallbackTokenizer) else tok
        nlp = getattr(spacy_tok, "tokenizer", None) if isinstance(spacy_tok, SpaCyTokenizer) else None
        # NOTE: Japanese chunks its input (datatrove's chunk_text_on_bytes); keep datatrove's path there.
        self.spacy = nlp.tokenizer if nlp is not None and spacy_tok.language != "ja" else None
        if nlp is not None:
            _keep_lexeme_attrs_read(nlp.vocab)
        from spacy.tokenizer import Tokenizer

        # spaCy's rule tokenizer splits on whitespace first: every whitespace-separated chunk gives >= 1 word.
        self.chunk_local = isinstance(self.spacy, Tokenizer)
        # ... and each chunk's words depend on that chunk alone, unless a special case spans a space (Russian
        # "в т.ч.", Malay "Sdn. Bhd.": one word across two chunks); English and most languages have none.
        self.chunk_cached = self.chunk_local and not any(
            not key.isspace() and any(c.isspace() for c in key) for key in self.spacy.rules or {}
        )
        self.risky_joins = _special_case_joins(self.spacy) if self.chunk_cached else {}
        # ICU and the Tibetan rule are linear in a run's length: no need to cut long runs (a Chinese paragraph is one).
        self.linear = isinstance(tok, IcuTokenizer | TibetanSyllableTokenizer)
        # Words are not what whitespace separates (C4 counts a line's words with this tokenizer then).
        self.segments_words = isinstance(tok, ScriptSegmenter)
        self.line_words: Callable[[str], list[str]] = tok.line_words if self.segments_words else str.split

    def words(self, text: str) -> list[str]:
        """Exactly datatrove's `split_into_words(text, lang)`, except that whitespace-free runs longer than
        `MAX_RUN_CHARS` are cut into pieces first (spaCy's prefix/suffix loop is quadratic in a run's length:
        a 1 MB run of "a:" would take half an hour)."""
        if self.linear:
            return self.tok.word_tokenize(text)
        if self.prepare is not None:
            text = self.prepare(text)
        text = _cut_long_runs(text)
        if self.spacy is None:
            return self.tok.word_tokenize(text)
        out = self._chunk_words(text) if self.chunk_cached and "IS_ALPHA" not in text else self._spacy_words(text)
        if len(self.spacy.vocab) > _VOCAB_RESET:
            self._build()  # a fresh spacy.blank: same tokens, bounded memory
        return self.finish(out) if self.finish is not None else out

    def _spacy_words(self, text: str) -> list[str]:
        try:
            doc = self.spacy(text)
        except Exception:
            if "IS_ALPHA" not in text:  # datatrove's workaround for a string that breaks spaCy
                raise
            doc = self.spacy(text.replace("IS_ALPHA", ""))
        return [s for s in (t.text.strip() for t in doc) if s]

    def _chunk_words(self, text: str) -> list[str]:
        """The same words as `_spacy_words`, from a per-process cache of each whitespace-separated chunk's tokens.

        spaCy's rule tokenizer cuts the text at whitespace (`str.isspace`, as `str.split`) before any rule runs, and
        whitespace tokens strip to nothing, so a text's words are its chunks' words in order. Real text repeats
        most chunks ("the", "of", "2.", numbers, markup), and a spaCy call costs a Doc and a Token object per word:
        only the chunks not seen yet go to spaCy (`_cache_chunks`). Neighbouring chunks that a special case may
        match across (`_special_case_joins`) go to spaCy together, as they stand in the text."""
        chunks = text.split()
        self._cache_chunks(chunks)
        cache = self._chunk_cache
        joins = self.risky_joins
        linked = {
            k
            for k, (a, b) in enumerate(zip(chunks, chunks[1:]))
            if any(a.endswith(x) and b.startswith(y) for x, y in joins.get((a[-1], b[0]), ()))
        }  # k: chunks k and k + 1 must be tokenized together
        if not linked:
            return [w for c in chunks for w in cache[c]]
        spans = [m.span() for m in _CHUNK.finditer(text)]
        if len(spans) != len(chunks):  # not expected (both cut at str.isspace); stay exact regardless
            return self._spacy_words(text)
        out: list[str] = []
        k = 0
        while k < len(chunks):
            j = k
            while j in linked:
                j += 1
            if j == k:
                out.extend(cache[chunks[k]])
            else:
                out.extend(self._spacy_words(text[spans[k][0] : spans[j][1]]))
            k = j + 1
        return out

    def _cache_chunks(self, chunks: list[str]) -> None:
        """Put the words of each chunk not seen yet in the cache: one spaCy call, each token back to its chunk by
        its character offset."""
        cache = self._chunk_cache
        new = [c for c in dict.fromkeys(chunks) if c not in cache]
        if not new:
            return
        if len(cache) + len(new) > _CHUNK_CACHE_SIZE:
            cache.clear()  # bounded memory; the next texts fill it again with what is frequent
        starts = []
        pos = 0
        for c in new:
            starts.append(pos)
            pos += len(c) + 1
        got: list[list[str]] = [[] for _ in new]
        k = 0
        # "\n", not " ": a newline is a token of its own, which no special case's tokens hold (a match across
        # a single space is possible, "= (:" makes spaCy drop the "(:" it saw), so each chunk is judged alone.
        for token in self.spacy("\n".join(new)):
            while k + 1 < len(starts) and token.idx >= starts[k + 1]:
                k += 1
            word = token.text.strip()
            if word:
                got[k].append(word)
        for c, words in zip(new, got):
            cache[c] = tuple(words)

    def sentences(self, text: str) -> list[str]:
        """The sentences of `text` as C4 counts them: datatrove's `split_into_sentences` with this tokenizer, and
        for a language other than English that keeps a spaCy tokenizer, also cut at a non-ASCII sentence sign
        spaCy left inside a word (module docstring)."""
        from datatrove.utils.text import split_into_sentences

        sentences = split_into_sentences(text, self.tok)
        if self.segments_words or self.fallback or normalize_lang(self.lang) == "en":
            return sentences  # their own rules (the fallback cuts at every sign itself), or datatrove's exactly
        from filters.segmenters import split_glued_sentence_ends

        return split_glued_sentence_ends(sentences)


def _special_case_joins(tokenizer: Any) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Every two neighbouring tokens of a special case that spaCy tokenizes into several tokens before it merges
    them ("(:" is "(" ":" until then), keyed by (last character of the first, first character of the second).
    spaCy's special-case matcher looks at those tokens across a single space as well ("= (" matches "=("), so a
    text with a chunk that ends with the first and a next chunk that starts with the second can tokenize
    differently from its chunks one by one."""
    from spacy.tokenizer import Tokenizer

    bare = Tokenizer(
        tokenizer.vocab,
        rules={},
        prefix_search=tokenizer.prefix_search,
        suffix_search=tokenizer.suffix_search,
        infix_finditer=tokenizer.infix_finditer,
        token_match=tokenizer.token_match,
        url_match=tokenizer.url_match,
    )
    joins: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key in tokenizer.rules or {}:
        tokens = [t.text for t in bare(key)]
        for a, b in zip(tokens, tokens[1:]):
            if a and b and (a, b) not in joins.get((a[-1], b[0]), ()):
                joins.setdefault((a[-1], b[0]), []).append((a, b))
    return joins


def _keep_lexeme_attrs_read(vocab: Any) -> None:
    """Compute only `is_punct` for a new word's lexeme: the sentencizer reads it (C4's sentences) and nothing here
    reads another lexeme attribute (only `Token.text`), while the other 22 (shape, norm, like_num, prefix, ...)
    were half of spaCy's tokenizing time on real text (each new word makes a lexeme). Tokens do not change."""
    from spacy.attrs import IS_PUNCT

    vocab.lex_attr_getters = {k: f for k, f in vocab.lex_attr_getters.items() if k == IS_PUNCT}


MAX_RUN_CHARS = 1000  # longer than any word; Gopher drops documents whose mean word exceeds 10 characters
_SPACE_SPLIT = re.compile(r"(\s+)")
_CHUNK = re.compile(r"\S+")  # str.split()'s chunks, with their places (re's \s is str.isspace)


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
    """The per-process tokenizer of `lang` (an ISO 639-1 or 639-3 code, or a language-ID label with a script)."""
    if lang not in _TOKENIZERS:
        _TOKENIZERS[lang] = _Tokenizer(lang)
    return _TOKENIZERS[lang]


# ------------------------------------------------------------------------------------------ shared features


class ProseFeatures:
    """Values of one document text shared by the prose filters, each computed on first use.

    Args:
        text: the document text.
        lang: language whose tokenizer is used.
    """

    def __init__(self, text: str, lang: str) -> None:
        self.text = text
        self.lang = lang
        self._words: list[str] | None = None

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = tokenizer_for(self.lang).words(self.text)
        return self._words


class TextFeatures:
    """The features of one batch of documents (an explicit object, not a global cache).

    `prose(doc, language)` returns the `ProseFeatures` of the document's current text, computing them once:
    a document whose text was replaced (C4 removed lines, a modifier redacted) gets fresh ones. Hold it only
    for one batch: it keeps the words of every document it has seen. `fallback_language(doc)` says whether the
    document's language has no segmenter here (the funnel counts such documents per language).
    """

    def __init__(self) -> None:
        self._prose: dict[int, ProseFeatures] = {}
        self._docs: list[Document] = []  # keeps the keyed documents alive, so that id() is not reused
        self._fallback: dict[int, str] = {}  # document -> language whose words took the fallback rule set

    def prose(self, doc: Document, language: str | None = None) -> ProseFeatures:
        """Features of `doc.text` for `language` (default `doc.lang`, then "en")."""
        lang = language or doc.lang or "en"
        feat = self._prose.get(id(doc))
        if feat is None or feat.text is not doc.text or feat.lang != lang:
            if feat is None:
                self._docs.append(doc)
            feat = ProseFeatures(doc.text, lang)
            self._prose[id(doc)] = feat
            self._note_fallback(doc, lang)
        return feat

    def fallback_language(self, doc: Document) -> str | None:
        """The language whose fallback rule set segmented `doc` (it has no segmenter here), or None."""
        return self._fallback.get(id(doc))

    def _note_fallback(self, doc: Document, lang: str) -> None:
        if tokenizer_for(lang).fallback:
            self._fallback[id(doc)] = lang

    def replace_text(self, doc: Document, text: str, lang: str) -> None:
        """Set `doc.text` and start its features afresh (C4's cleaned text)."""
        doc.text = text
        if id(doc) not in self._prose:
            self._docs.append(doc)
        self._prose[id(doc)] = ProseFeatures(text, lang)
        self._note_fallback(doc, lang)


def find_duplicates(items: list[str]) -> tuple[int, int]:
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
