"""Remove Project Gutenberg boilerplate from a book: header, footer and licence, credits, transcriber's notes.

The markers are Project Gutenberg's own ("*** START OF THE PROJECT GUTENBERG EBOOK ... ***", "*** END OF THIS
PROJECT GUTENBERG EBOOK ... ***", "End of Project Gutenberg's ...", "START: FULL LICENSE", the older
"*END*THE SMALL PRINT!" header), as cut by the Standardized Project Gutenberg Corpus (Gerlach & Font-Clos 2020,
arXiv 1812.08092) and the `gutenberg` package's `strip_headers`. Trained on, the licence text teaches a model the
same 4,000 words ~85 times per 85 books, and its e-mail addresses and URLs reach the PII filter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from filters.base import Modifier
from schemas import Document

__all__ = ["GutenbergBoilerplate"]

# A line that ends the header: everything before it, and it, is Project Gutenberg's, not the work's.
_START_RE = re.compile(
    r"^\W*(?:START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|END\W*THE SMALL PRINT!)",  # pre-2000 etexts: the licence ("small print") is the header
    re.IGNORECASE,
)
# A line that starts the footer: it and everything after (the end marker, then the full licence).
_END_RE = re.compile(
    r"^\W*(?:END OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|End of (?:the |this )?Project Gutenberg(?:'s)?\b"
    r"|START: FULL LICENSE"
    r"|THE FULL PROJECT GUTENBERG(?:-tm)? LICENSE)",
    re.IGNORECASE,
)
# The production credit that opens most texts ("Produced by Jane Doe and the Online Distributed Proofreading
# Team"): a paragraph, removed when it is among the first lines of the body.
_CREDITS_RE = re.compile(
    r"^\s*(?:Produced by|E-?text (?:was )?prepared by|This e-?(?:text|book) was (?:produced|prepared) by"
    r"|Transcribed (?:from .{0,80} )?by|Scanned (?:and proofed )?by)\b",
    re.IGNORECASE,
)
_NOTE_RE = re.compile(r"^\s*\[?\s*Transcriber'?s?'? ?Notes?\b", re.IGNORECASE)
_CREDITS_WINDOW = 6_000  # characters from the start of the body where a credit paragraph is looked for
_MAX_NOTE_CHARS = 6_000  # a bracketed note longer than this is not closed: only its paragraph is removed


def _paragraph_end(lines: list[str], i: int) -> int:
    """Index of the first blank line at or after `i` (or len(lines))."""
    while i < len(lines) and lines[i].strip():
        i += 1
    return i


class GutenbergBoilerplate(Modifier):
    """Cut Project Gutenberg's header, footer and licence, production credits and transcriber's notes.

    Header: every line up to and including the first START marker (the title block, "This eBook is for the use
    of anyone anywhere...", release date, or the old "small print" licence). Footer: from the first END marker /
    "End of Project Gutenberg's" line / "START: FULL LICENSE" / "THE FULL PROJECT GUTENBERG LICENSE" line after
    the header, to the end. Markers must open a line (after punctuation such as "***"), so prose that mentions
    Project Gutenberg is not cut. Credits: a "Produced by ..." paragraph within the first 6,000 characters of the body.
    Transcriber's notes: "[Transcriber's Note: ...]" up to its closing bracket, or an unbracketed
    "Transcriber's Notes" paragraph, anywhere. A text without markers is left as it is.

    Each kind of cut is one `modified` lineage row, `gutenberg_boilerplate_<header|footer|credits|
    transcriber_note>`, whose score is the number of characters removed.

    Args:
        remove_credits: remove the "Produced by ..." paragraph.
        remove_transcriber_notes: remove transcriber's notes.
        domains: document domains this applies to (default books: a web page quoting a marker is left alone).
    """

    name = "gutenberg_boilerplate"

    def __init__(
        self,
        remove_credits: bool = True,
        remove_transcriber_notes: bool = True,
        domains: Sequence[str] | None = ("books",),
    ) -> None:
        for key, value in (("remove_credits", remove_credits), ("remove_transcriber_notes", remove_transcriber_notes)):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
        self.remove_credits = remove_credits
        self.remove_transcriber_notes = remove_transcriber_notes
        self.domains = frozenset(domains) if domains is not None else None

    def clean(self, text: str) -> tuple[str, list[tuple[str, float]]]:
        """The text without boilerplate, and one (reason, characters removed) per kind of cut made."""
        low = text.lower()
        if "gutenberg" not in low and "transcriber" not in low:
            return text, []  # cheap exit: nothing to cut in most books of other origins
        lines = text.splitlines(keepends=True)
        changes: list[tuple[str, float]] = []

        # Header: up to the first START marker. NOTE: not limited to the first half of the text: the old
        # "small print" header (~12 KB) is longer than a short poem.
        pos = 0
        for i, line in enumerate(lines):
            if _START_RE.match(line):
                changes.append(("gutenberg_boilerplate_header", float(pos + len(line))))
                lines = lines[i + 1 :]
                break
            pos += len(line)

        # Footer: from the first END-like marker of the body (the full licence, ~19 KB, outweighs a short poem).
        total = sum(len(ln) for ln in lines)
        pos = 0
        for i, line in enumerate(lines):
            if _END_RE.match(line):
                changes.append(("gutenberg_boilerplate_footer", float(total - pos)))
                lines = lines[:i]
                break
            pos += len(line)

        if self.remove_credits:
            pos = 0
            for i, line in enumerate(lines):
                if pos > _CREDITS_WINDOW:
                    break
                if _CREDITS_RE.match(line):
                    j = _paragraph_end(lines, i)
                    changes.append(("gutenberg_boilerplate_credits", float(sum(len(ln) for ln in lines[i:j]))))
                    del lines[i:j]
                    break
                pos += len(line)

        if self.remove_transcriber_notes:
            removed, i = 0, 0
            while i < len(lines):
                if not _NOTE_RE.match(lines[i]):
                    i += 1
                    continue
                j = _paragraph_end(lines, i)
                if lines[i].lstrip().startswith("["):  # up to the closing bracket, across blank lines
                    k, size = i, 0
                    while k < len(lines) and size <= _MAX_NOTE_CHARS and "]" not in lines[k]:
                        size += len(lines[k])
                        k += 1
                    if k < len(lines) and size <= _MAX_NOTE_CHARS:
                        j = k + 1
                removed += sum(len(ln) for ln in lines[i:j])
                del lines[i:j]
            if removed:
                changes.append(("gutenberg_boilerplate_transcriber_note", float(removed)))

        if not changes:
            return text, []
        return "".join(lines).strip("\r\n") + "\n", changes

    def modify(self, doc: Document) -> list[tuple[str, float | None]]:
        doc.text, changes = self.clean(doc.text)
        return list(changes)
