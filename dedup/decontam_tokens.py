"""Decontamination's normalisation: the tokens of a text and their tagged hashes, the same on the index side
(evaluation items) and the lookup side (training documents), so that a perturbed copy hashes like the item.

- NFKC, lowercase; every run of digits becomes "0" (a copy with renamed numbers);
- words are those of the MinHash tokenizer (`\\w+`, one token per CJK / Thai character); every other non-space
  character is a token of its own (symbols count in short units matched whole);
- simple inflection: `stem` maps plural and tense forms to one stem. It is not Porter's stemmer: it only has to
  be consistent.

Each token hash carries two tag bits (bit 0: a symbol, bit 1: a weak word, a number or one ASCII letter), so that
word and content masks are one vectorised `&` away (`is_word`, `is_content`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np

from dedup.minhash import make_tokenizer

_DIGITS = re.compile(r"\d+")
_MEMO_MAX = 1 << 21  # token -> hash memo entries before it is cleared (bounds memory on any corpus)


# Common irregular verbs and the auxiliaries be / have / do, past and participle -> base form ("simple inflection"
# includes "was" -> "is" and "sold" -> "sells" as much as "walked" -> "walks").
_IRREGULAR = {
    w: base
    for base, forms in {
        "be": "is are was were am been being",
        "have": "has had having",
        "do": "does did done doing",
        "buy": "bought",
        "sell": "sold",
        "make": "made",
        "give": "gave given",
        "take": "took taken",
        "spend": "spent",
        "eat": "ate eaten",
        "run": "ran",
        "get": "got gotten",
        "pay": "paid",
        "go": "went gone goes",
        "find": "found",
        "see": "saw seen",
        "drive": "drove driven",
        "write": "wrote written",
        "read": "read",
        "grow": "grew grown",
        "throw": "threw thrown",
        "build": "built",
        "keep": "kept",
        "bring": "brought",
        "catch": "caught",
        "leave": "left",
        "feel": "felt",
        "tell": "told",
        "say": "said",
        "think": "thought",
        "come": "came",
        "become": "became",
        "begin": "began begun",
        "know": "knew known",
        "lose": "lost",
        "win": "won",
        "send": "sent",
        "meet": "met",
        "sit": "sat",
        "stand": "stood",
        "hold": "held",
        "fall": "fell fallen",
        "choose": "chose chosen",
        "fly": "flew flown",
        "swim": "swam swum",
        "ride": "rode",
        "break": "broke broken",
        "speak": "spoke spoken",
        "wear": "wore worn",
        "teach": "taught",
        "lend": "lent",
        "draw": "drew drawn",
        "sing": "sang sung",
        "drink": "drank drunk",
        "sleep": "slept",
        "lay": "laid",
    }.items()
    for w in forms.split()
}


def stem(word: str) -> str:
    """Map an irregular verb form to its base, strip one English inflection suffix (plural, past, -ing), then a
    final e / y; for matching only.

    "apples"/"apple" -> "appl", "candies"/"candy" -> "candi", "stopped"/"stops" -> "stop", "baking"/"bakes" -> "bak".
    """
    word = _IRREGULAR.get(word, word)
    if len(word) < 4:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "i"
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith(("ed", "es")) and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":  # stopp -> stop
        word = word[:-1]
    if len(word) > 3 and word[-1] == "e":
        word = word[:-1]
    elif len(word) > 3 and word[-1] == "y":
        word = word[:-1] + "i"
    return word


class TokenHasher:
    """Tokens of a text and their uint64 hashes (a memo of token -> hash, bounded, per instance).

    Args:
        char_scripts: scripts tokenised per character (as MinHash dedup).
    """

    def __init__(self, char_scripts: Iterable[str]) -> None:
        # Words as the MinHash tokenizer, plus every other non-space character as its own token (short units).
        self.pattern = re.compile(make_tokenizer(tuple(char_scripts)).pattern + r"|[^\w\s]")
        self._memo: dict[str, int] = {}

    def tokens(self, text: str) -> list[str]:
        """Tokens of NFKC-lowercased `text`: words as the MinHash tokenizer, every other non-space character alone."""
        return self.pattern.findall(unicodedata.normalize("NFKC", text).lower())

    def hashes(self, toks: list[str]) -> np.ndarray:
        """uint64 hash per normalised token (digit runs -> "0", `stem`); bit 0 is set for symbol tokens, bit 1 for
        weak words (numbers, one ASCII letter)."""
        memo = self._memo
        try:
            return np.fromiter(map(memo.__getitem__, toks), np.uint64, len(toks))
        except KeyError:
            if len(memo) > _MEMO_MAX:
                memo.clear()
            import xxhash

            for tok in set(toks).difference(memo):
                norm = _DIGITS.sub("0", tok)
                word = norm[0].isalnum() or norm[0] == "_"
                weak = norm == "0" or (len(norm) == 1 and norm.isascii())  # a number or a one-letter variable
                h = xxhash.xxh3_64_intdigest(stem(norm) if word else norm)
                # The two low bits tag symbols and weak tokens, so masks are one vectorised `&` away.
                memo[tok] = (h & ~3) | (0 if word else 1) | (2 if weak else 0)
            return np.fromiter(map(memo.__getitem__, toks), np.uint64, len(toks))

    @staticmethod
    def exact(toks: list[str]) -> np.ndarray:
        """uint64 hash per token as it is (numbers kept), for the items matched exactly."""
        import xxhash

        return np.fromiter(map(xxhash.xxh3_64_intdigest, toks), np.uint64, len(toks))


def is_word(h: np.ndarray) -> np.ndarray:
    """Mask of the word tokens among token hashes `h` (symbols have bit 0 set)."""
    return (h & np.uint64(1)) == 0


def is_content(words: np.ndarray) -> np.ndarray:
    """Mask of the content words among word hashes (numbers and one-letter variables have bit 1 set)."""
    return (words & np.uint64(2)) == 0
