"""Edits that make the second text of a labelled pair from the first (dedup/pairs.py), each with the
`random.Random` it is given, so that the same seed gives the same pairs.

Positives (the same document): `respace`, `edit_words`, `sentence_edit`, `byline` (web template spam), `relicense`.
Hard negatives (different documents in the same wording): `renumber`, `rename`, `sibling_functions`,
`shared_boilerplate`. The names, dates and copyright holders used are invented here (no third-party text).
"""

from __future__ import annotations

import random
import re

from dedup.pair_sources import stdlib_functions

NUMBER = re.compile(r"\d+")
_WS = re.compile(r"(\s+)")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\])")
_CAP = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]{2,})\b")
_NOT_NAMES = {
    "The",
    "How",
    "What",
    "If",
    "She",
    "He",
    "They",
    "Each",
    "Then",
    "There",
    "This",
    "That",
    "Find",
    "On",
    "In",
    "At",
    "For",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "After",
    "When",
    "So",
    "But",
    "And",
    "It",
    "His",
    "Her",
    "Their",
    "Since",
    "Total",
    "Answer",
}
# Invented names and dates for renamed problems and template bylines (no third-party text).
_NAMES = (
    "Avery",
    "Bodhi",
    "Carmen",
    "Dario",
    "Elin",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tomas",
    "Uma",
    "Viktor",
    "Wen",
    "Yara",
)
_MONTHS = ("January", "March", "May", "July", "September", "November")
_HOLDERS = ("Example Labs Inc.", "The Sample Project Authors", "Jane Q. Developer", "Northwind Software GmbH")


# --- positives ---------------------------------------------------------------------------------------------------


def respace(text: str, rng: random.Random) -> str:
    """Same tokens, other whitespace: re-indented, CRLF or blank lines added, runs of spaces."""
    mode = rng.randrange(3)
    if mode == 0:
        return "\r\n".join("  " + line.replace("    ", "  ") for line in text.split("\n"))
    if mode == 1:
        return _WS.sub(lambda m: "\n\n" if "\n" in m.group() else "  ", text)
    return " ".join(text.split())


def edit_words(text: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    """Replace, delete or duplicate `rate` of the words (at least one), keeping the whitespace between them."""
    parts = _WS.split(text)
    words = list(range(0, len(parts), 2))
    for i in rng.sample(words, max(1, min(len(words), round(rate * len(words))))):
        op = rng.randrange(3)
        parts[i] = rng.choice(vocab) if op == 0 else "" if op == 1 else f"{parts[i]} {parts[i]}"
    return "".join(parts)


def sentence_edit(text: str, other: str, remove: bool, rng: random.Random) -> str:
    """One sentence (never the first) removed, or one sentence of `other` inserted."""
    sents = SENTENCE_BREAK.split(text)
    if remove:
        del sents[rng.randrange(1, len(sents))]
    else:
        sents.insert(rng.randrange(1, len(sents) + 1), rng.choice(SENTENCE_BREAK.split(other)))
    return " ".join(sents)


def byline(text: str, rng: random.Random) -> str:
    """A page of a content farm: the text between a byline and a footer, with a random name and date."""
    name, month = rng.choice(_NAMES), rng.choice(_MONTHS)
    day, year = rng.randrange(1, 29), rng.randrange(2015, 2025)
    return (
        f"Posted by {name} on {month} {day}, {year} in Homework Help\n\n{text}\n\n"
        f"Was this answer helpful? Share it with your friends. Last updated {month} {day}, {year} by {name}."
    )


def relicense(text: str, rng: random.Random) -> str:
    """The licence with another copyright holder and year on its copyright lines."""
    year, holder = str(rng.randrange(1995, 2025)), rng.choice(_HOLDERS)

    def line(m: re.Match[str]) -> str:
        return f"{m.group(1)} {year} {holder}"

    return re.sub(r"(?im)^(\s*copyright\s*(?:\(c\)|©)?)\s+\d{4}.*$", line, text)


# --- hard negatives --------------------------------------------------------------------------------------------


def renumber(text: str, rng: random.Random) -> str:
    """Every number replaced consistently by another one of similar size (a different problem, same wording)."""
    new: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        s = m.group()
        if s not in new:
            v = int(s)
            w = v
            while w == v:
                w = max(1, v + rng.choice((-1, 1)) * rng.randrange(1, max(3, v // 2 + 2)))
            new[s] = str(w)
        return new[s]

    return NUMBER.sub(sub, text)


def names_in(text: str) -> list[str]:
    """Capitalised words that are not sentence starts, weekdays, months or common words: the people of a problem."""
    return sorted({n for n in _CAP.findall(text) if n not in _NOT_NAMES})


def rename(text: str, rng: random.Random) -> str:
    """Every name of `names_in` replaced by an invented one."""
    names = names_in(text)
    to = dict(zip(names, rng.sample([n for n in _NAMES if n not in names], len(names))))
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: to[m.group()], text)


def sibling_functions(limit: int, rng: random.Random) -> list[tuple[str, str]]:
    """Functions of one module with one signature (the same boilerplate) and different names and bodies."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for mod, name, sig, src in stdlib_functions():
        groups.setdefault((mod, sig), []).append((name, src))
    pairs = []
    for (_, _), funcs in sorted(groups.items()):
        funcs = sorted(funcs)
        pairs += [(a[1], b[1]) for a, b in zip(funcs, funcs[1:]) if a[0] != b[0]]
    return rng.sample(pairs, min(limit, len(pairs)))


def shared_boilerplate(funcs: list[str], licences: list[str], limit: int, rng: random.Random) -> list[tuple[str, str]]:
    """Two modules with one licence header, import block and docstring template, and different functions."""
    headers = [" ".join(t.split()[: rng.randrange(60, 160)]) for t in licences]
    imports = "import os\nimport re\nimport sys\nfrom collections.abc import Iterable\nfrom pathlib import Path\n"
    out = []
    for _ in range(limit):
        header = "\n".join("# " + line for line in _wrap(rng.choice(headers)))
        a, b = rng.sample(funcs, 2), rng.sample(funcs, 2)
        doc = '"""Helpers of the {0} package.\n\nPart of the toolkit; see the documentation for details.\n"""\n'
        out.append(tuple(f"{header}\n{doc.format(i)}\n{imports}\n\n" + "\n\n".join(f) for i, f in ((0, a), (1, b))))
    return out  # type: ignore[return-value]


def _wrap(text: str, width: int = 76) -> list[str]:
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return lines + [cur] if cur else lines
