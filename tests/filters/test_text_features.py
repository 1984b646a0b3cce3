"""The cached per-chunk word path of `filters.text_features` gives spaCy's words exactly."""

from __future__ import annotations

from filters.gopher_repetition import GopherRepetition
from filters.text_features import tokenizer_for

ENGLISH = (
    "Dr. Smith's 10km run (on 3/4/2024) didn't start: it cannot, won't.\n\n"
    'Visit https://example.org/a?b=c or mail me@example.org -- "quoted" text... e.g. U.S.A. 3.14%'
)


def test_chunk_cache_gives_spacys_words_and_is_reused() -> None:
    tok = tokenizer_for("en")
    assert tok.chunk_cached
    for text in (ENGLISH, ENGLISH.upper(), ENGLISH + " " + ENGLISH[::-1]):
        assert tok.words(text) == tok._spacy_words(text)
    assert "won't." in tok._chunk_cache  # seen once, kept for the next text
    assert tok.words("cannot") == ["can", "not"]  # a special case inside one chunk still applies


def test_a_special_case_that_spacy_matches_across_a_space_gives_spacys_words() -> None:
    tok = tokenizer_for("en")
    tok.words("(:attr:`x`).")  # the chunk alone: "(:" is one word, and it is now cached
    text = "obj = (:attr:`x`)."  # here spaCy's matcher takes "= (" for "=(" and keeps "(" ":" apart
    assert tok.words(text) == tok._spacy_words(text)
    assert "(:" not in tok.words(text)
    mixed = "The value = (:attr:`x`). is cached; (:attr:`x`). alone, then = (:y and x = (:"
    assert tok.words(mixed) == tok._spacy_words(mixed)  # linked chunks go to spaCy together, the rest cached


def test_special_case_across_a_space_keeps_the_whole_text_path() -> None:
    tok = tokenizer_for("ru")
    assert not tok.chunk_cached  # "в т.ч." is one word across two chunks
    assert "в т.ч." in tok.words("это слово в т.ч. другое")


def test_duplicate_n_gram_chars_match_datatrove_joins() -> None:
    words = ["ab", "c", "a", "bc", "x", "ab", "c", "a", "bc", "x", "y"]
    joined, offsets = "".join(words), [0]
    for w in words:
        offsets.append(offsets[-1] + len(w))
    # datatrove's find_all_duplicate: greedy over "".join(words[i : i + n])
    for n in (2, 3, 5):
        grams = ["".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        seen, repeated, i = set(), 0, 0
        while i < len(grams):
            if grams[i] in seen:
                repeated, i = repeated + len(grams[i]), i + n
            else:
                seen.add(grams[i])
                i += 1
        assert GopherRepetition._all_duplicate_chars(joined, offsets, n) == repeated
    assert GopherRepetition._all_duplicate_chars(joined, offsets, 20) == 0
