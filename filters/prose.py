"""The prose of a document: what a language-ID model should read.

Language ID models are trained on running text; LaTeX, formulas, code, URLs and e-mail addresses are not in any
language and pull the top score down (with lid.176 ~13% of competition-math problems fell under FineWeb's 0.65).
`prose(text)` removes them and reports how much of the text was such markup, so that a document that is mostly
math can be kept when the little prose left gives an unsure score.

Removed (each span is replaced by one space so that words on either side stay apart):
- LaTeX math: `$$..$$`, `$..$`, `\\[..\\]`, `\\(..\\)`, `\\begin{..}..\\end{..}`, and the remaining `\\command`s.
- Code: fenced blocks (``` and ~~~), 4-space / tab indented blocks, Asymptote `[asy]..[/asy]` (MATH dataset).
- Calculator annotations `<<48/2=24>>` (GSM8K).
- URLs (scheme or `www.`) and e-mail addresses.
- Formula-like lines: lines where letters (with their combining marks: a Devanagari or Thai vowel sign is a
  mark, not a letter, to Python's `re`) are under half of the non-space characters (equations, tables of numbers,
  `#### 18`), and tokens without letters inside prose lines (numbers, operators).

Cost: the models read `max_chars` of prose; `prose` reads a window of the document three times that long, and
eight times only when the first window held too little prose (a math or code document), so a long document
costs no more than a short one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

# Order matters: fenced code and display math first, so that a `$` inside them does not open inline math.
# Each pattern runs only when the text holds one of its trigger strings: most documents have no `$`, `@` or
# backslash, and a regex scan of every character costs more than a substring test.
_BLOCKS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("```", "~~~"), re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.M | re.S)),  # fenced code
    (("[asy]",), re.compile(r"\[asy\].*?\[/asy\]", re.S)),  # Asymptote figures in MATH solutions
    (("\\begin{",), re.compile(r"\\begin\{([a-zA-Z*]+)\}.*?\\end\{\1\}", re.S)),  # LaTeX environments
    (("$$",), re.compile(r"\$\$.*?\$\$", re.S)),
    (("\\[",), re.compile(r"\\\[.*?\\\]", re.S)),
    (("\\(",), re.compile(r"\\\(.*?\\\)", re.S)),
    # Inline math: no blank line inside, and not "$5 and $10" prices: the closing `$` is not followed by a digit.
    (("$",), re.compile(r"(?<![\\$])\$(?!\s)(?:[^$\n\\]|\\.){1,400}?(?<![\s\\])\$(?!\d)")),
    (("<<",), re.compile(r"<<[^<>\n]{0,200}>>")),  # GSM8K calculator annotations
    (("://", "www.", "WWW.", "Www."), re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.[^\s/]+\S*", re.I)),
    (("@",), re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    # Stray LaTeX commands outside math: the command goes, its argument stays (\textbf{word} -> word).
    (("\\", "{", "}"), re.compile(r"\\[a-zA-Z]+\*?|[{}]")),
]
_INDENTED_CODE = re.compile(r"(?:^(?: {4}|\t)[^\n]*\n?){2,}", re.M)  # 2+ indented lines: Markdown code blocks
# Non-space characters that are not letters or combining marks (`regex` knows Unicode categories): Gurmukhi
# "ਖ਼ਿਲਾਫ਼" is 3 letters and 4 marks, and counted by letters alone a line of Punjabi, Telugu or Thai fell under half
# and was taken for a formula.
_NOT_LETTER_OR_MARK = regex.compile(r"[^\p{L}\p{M} \t]")
# A whitespace-separated token with no letter in it (numbers, operators, punctuation): `re`'s letters are word
# characters that are not digits or "_".
_NO_LETTER_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
_FIRST_WINDOW, _LAST_WINDOW = 3, 8  # windows read, in multiples of max_chars


@dataclass(frozen=True)
class Prose:
    """What is left for language ID, and how much markup was removed.

    Attributes:
        text: the prose, whitespace collapsed to single spaces, at most `max_chars` characters.
        markup_ratio: removed non-space characters / all non-space characters of the original (0 for empty text).
    """

    text: str
    markup_ratio: float


def _formula_line(line: str) -> bool:
    chars = len(line) - line.count(" ") - line.count("\t")
    return chars > 0 and chars - _NOT_LETTER_OR_MARK.subn("", line)[1] < 0.5 * chars


def prose(text: str, max_chars: int | None = None) -> Prose:
    """The prose of `text` (see module docstring) and the share of markup removed.

    Args:
        text: the document.
        max_chars: keep only the first `max_chars` characters of prose (models cost linear time in the length;
            a few thousand characters decide the language). Only the first `3 * max_chars` characters of the input
            are read, or `8 * max_chars` when those held less than `max_chars` of prose; the markup ratio is
            measured on the window read. None reads everything.
    """
    if max_chars is None:
        return _prose(text, None)
    first = _prose(text[: _FIRST_WINDOW * max_chars], max_chars)
    if len(first.text) >= max_chars or len(text) <= _FIRST_WINDOW * max_chars:
        return first
    return _prose(text[: _LAST_WINDOW * max_chars], max_chars)


def _prose(text: str, max_chars: int | None) -> Prose:
    total = len(text) - text.count(" ") - text.count("\n") - text.count("\t")
    if total <= 0:
        return Prose("", 0.0)
    out = _INDENTED_CODE.sub("\n", text) if "    " in text or "\t" in text else text
    for triggers, pattern in _BLOCKS:
        if any(t in out for t in triggers):
            out = pattern.sub(" ", out)
    out = "\n".join(line for line in out.split("\n") if not _formula_line(line))
    out = " ".join(_NO_LETTER_TOKEN.sub(" ", out).split())  # numbers and operators are in no language
    kept = len(out) - out.count(" ")
    if max_chars is not None:
        out = out[:max_chars].rstrip()
    return Prose(out, max(0.0, 1.0 - kept / total))
