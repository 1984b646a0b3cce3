"""The two kinds of document step a filter chain runs, and the chain itself.

A `Filter` decides (datatrove's contract): `filter(doc)` returns True to keep, or `(False, reason)` /
`(False, reason, score)` to drop. Reasons are stable snake_case strings prefixed by the filter's name
so that `GROUP BY reason` in DuckDB is meaningful. Filters never raise on odd text. A filter that also
edits the text (C4 drops lines) gets a `modified` lineage row `<name>_text_changed` whose score is
the number of characters removed.

A `Modifier` changes text in place (PII and secret redaction) and returns one `(reason, score)` per
kind of change it made, recorded as `modified` in the lineage table.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from schemas import Document, LineageRecord

log = logging.getLogger(__name__)
FilterResult = bool | tuple[bool, str] | tuple[bool, str, float]


class Filter:
    """Base class: set `name`, optionally `domains`, implement `filter`."""

    name: str = "filter"
    domains: frozenset[str] | None = None  # None: applies to every domain

    def applies_to(self, doc: Document) -> bool:
        return self.domains is None or doc.domain in self.domains

    def filter(self, doc: Document) -> FilterResult:
        raise NotImplementedError


class Modifier:
    """Base class: set `name`, optionally `domains`, implement `modify`."""

    name: str = "modifier"
    domains: frozenset[str] | None = None

    def applies_to(self, doc: Document) -> bool:
        return self.domains is None or doc.domain in self.domains

    def modify(self, doc: Document) -> list[tuple[str, float | None]]:
        """Change `doc.text` in place; return one (reason, score) per kind of change, [] if none."""
        raise NotImplementedError


Step = Filter | Modifier
_warned: set[tuple[str, str]] = set()


def _warn_once(step: str, error: Exception) -> None:
    """Log a step's failure once per exception type; the document is dropped as `<step>_error`."""
    key = (step, type(error).__name__)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s raised %s: %s (documents it fails on are dropped as %s_error)", step, key[1], error, step)


class ChainStats:
    """Counts per step: documents in, out, and per drop reason (the funnel)."""

    def __init__(self) -> None:
        self.docs_in = 0
        self.docs_out = 0
        self.dropped: Counter[str] = Counter()  # reason -> count
        self.modified: Counter[str] = Counter()
        self.dropped_by_step: Counter[str] = Counter()  # step name -> count


class LineageSink(Protocol):
    def append(self, rec: LineageRecord) -> None: ...


def run_chain(
    docs: Iterable[Document],
    steps: Sequence[Step],
    lineage: LineageSink,
    stats: ChainStats | None = None,
) -> Iterator[Document]:
    """Stream documents through `steps`, appending every drop or change to `lineage`.

    Args:
        docs: documents to filter.
        steps: filters and modifiers, applied in order; a document stops at the first drop.
        lineage: a list, or any object with `append`, that receives one record per drop or change.
        stats: optional counters, updated as documents pass.
    """
    stats = stats or ChainStats()
    for doc in docs:
        stats.docs_in += 1
        kept = True
        for step in steps:
            if not step.applies_to(doc):
                continue
            try:
                if isinstance(step, Modifier):
                    for reason, score in step.modify(doc):
                        lineage.append(LineageRecord(doc.id, step.name, "modified", reason, score))
                        stats.modified[reason] += 1
                    continue
                text_before = doc.text
                result = step.filter(doc)
                if doc.text is not text_before and doc.text != text_before:
                    # A filter that also edits (C4 removes lines) records it like a modifier does.
                    reason = f"{step.name}_text_changed"
                    lineage.append(
                        LineageRecord(doc.id, step.name, "modified", reason, float(len(text_before) - len(doc.text)))
                    )
                    stats.modified[reason] += 1
                    if result is True and not doc.text.strip():
                        result = (False, f"{step.name}_emptied_text")  # nothing left to train on
            except Exception as e:  # noqa: BLE001 - one odd document must not crash the stage
                _warn_once(step.name, e)
                result = (False, f"{step.name}_error")
            if result is True:
                continue
            if result is False:
                reason, score = f"{step.name}_dropped", None
            elif result[0]:
                continue
            else:
                reason = result[1]
                score = result[2] if len(result) > 2 else None
            lineage.append(LineageRecord(doc.id, step.name, "dropped", reason, score))
            stats.dropped[reason] += 1
            stats.dropped_by_step[step.name] += 1
            kept = False
            break
        if kept:
            stats.docs_out += 1
            yield doc
