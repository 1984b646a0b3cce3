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
- Formula-like lines: lines where letters are under half of the non-space characters (equations, tables of
  numbers, `#### 18`), and tokens without letters inside prose lines (numbers, operators).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Order matters: fenced code and display math first, so that a `$` inside them does not open inline math.
_BLOCKS = [
    re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.M | re.S),  # fenced code
    re.compile(r"\[asy\].*?\[/asy\]", re.S),  # Asymptote figures in MATH solutions
    re.compile(r"\\begin\{([a-zA-Z*]+)\}.*?\\end\{\1\}", re.S),  # LaTeX environments (align, tabular, ...)
    re.compile(r"\$\$.*?\$\$", re.S),
    re.compile(r"\\\[.*?\\\]", re.S),
    re.compile(r"\\\(.*?\\\)", re.S),
    # Inline math: no blank line inside, and not "$5 and $10" prices: the closing `$` is not followed by a digit.
    re.compile(r"(?<![\\$])\$(?!\s)(?:[^$\n\\]|\\.){1,400}?(?<![\s\\])\$(?!\d)"),
    re.compile(r"<<[^<>\n]{0,200}>>"),  # GSM8K calculator annotations
    re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.[^\s/]+\S*", re.I),
    re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    # Stray LaTeX commands outside math: the command goes, its argument stays (\textbf{word} -> word).
    re.compile(r"\\[a-zA-Z]+\*?|[{}]"),
]
_INDENTED_CODE = re.compile(r"(?:^(?: {4}|\t)[^\n]*\n?){2,}", re.M)  # 2+ indented lines: Markdown code blocks
_LETTER = re.compile(r"[^\W\d_]")


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
    chars = line.replace(" ", "").replace("\t", "")
    return bool(chars) and len(_LETTER.findall(chars)) < 0.5 * len(chars)


def prose(text: str, max_chars: int | None = None) -> Prose:
    """The prose of `text` (see module docstring) and the share of markup removed.

    Args:
        text: the document.
        max_chars: keep only the first `max_chars` characters of prose (models cost linear time in the length;
            a few thousand characters decide the language). Only about `8 * max_chars` characters of the input are
            read, so a long document costs no more than a short one. None reads everything.
    """
    if max_chars is not None:
        text = text[: 8 * max_chars]
    total = len(text) - text.count(" ") - text.count("\n") - text.count("\t")
    if total <= 0:
        return Prose("", 0.0)
    out = _INDENTED_CODE.sub("\n", text)
    for pattern in _BLOCKS:
        out = pattern.sub(" ", out)
    out = "\n".join(line for line in out.split("\n") if not _formula_line(line))
    out = " ".join(tok for tok in out.split() if _LETTER.search(tok))  # numbers and operators are in no language
    kept = len(out) - out.count(" ")
    if max_chars is not None:
        out = out[:max_chars].rstrip()
    return Prose(out, max(0.0, 1.0 - kept / total))
