"""The two kinds of document step a filter chain runs, and the chain itself.

A `Filter` decides (datatrove's contract): `filter(doc)` returns True to keep, or `(False, reason)` /
`(False, reason, score)` to drop. Reasons are stable snake_case strings prefixed by the filter's name
so that `GROUP BY reason` in DuckDB is meaningful. Filters never raise on odd text. A filter that also
edits the text (C4 drops lines) gets a `modified` lineage row `<name>_text_changed` whose score is
the number of characters removed.

A `Modifier` changes text in place (PII and secret redaction) and returns one `(reason, score)` per
kind of change it made, recorded as `modified` in the lineage table.

Batches: `run_chain` passes documents through the chain `batch_size` at a time. Each filter gets the batch's
live documents in one `filter_batch(docs, features)` call, so a model-based filter (language ID, toxicity) makes
one model call per batch, and the prose filters share one `TextFeatures` object per batch. Decisions, lineage
rows (per document, in document order) and stats are the same as running one document at a time.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Protocol

from filters.text_features import TextFeatures
from schemas import Document, LineageRecord

log = logging.getLogger(__name__)
FilterResult = bool | tuple[bool, str] | tuple[bool, str, float]
BATCH_SIZE = 256


class Filter:
    """Base class: set `name`, optionally `domains`, implement `filter`."""

    name: str = "filter"
    domains: frozenset[str] | None = None  # None: applies to every domain

    def applies_to(self, doc: Document) -> bool:
        return self.domains is None or doc.domain in self.domains

    def filter(self, doc: Document) -> FilterResult:
        raise NotImplementedError

    def filter_batch(self, docs: Sequence[Document], features: TextFeatures | None = None) -> list[FilterResult]:
        """One result per document, in order. Override to judge a batch at once (one model call).

        Args:
            docs: documents this filter applies to, in chain order.
            features: the batch's shared text features (prose filters use them); None: compute as needed.
        """
        return [self.filter(doc) for doc in docs]


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
        # language -> documents whose words took the fallback rule set (no segmenter for the language here)
        self.segmentation_fallback: Counter[str] = Counter()


# The filter step's stats key of `ChainStats.segmentation_fallback` (`segmentation_fallback.<lang>`: documents of that
# language judged with the fallback word rules), a count that is no lineage row.
FALLBACK_COUNT_PREFIX = "segmentation_fallback."


class LineageSink(Protocol):
    def append(self, rec: LineageRecord) -> None: ...


def run_chain(
    docs: Iterable[Document],
    steps: Sequence[Step],
    lineage: LineageSink,
    stats: ChainStats | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Document]:
    """Stream documents through `steps`, appending every drop or change to `lineage`.

    Args:
        docs: documents to filter.
        steps: filters and modifiers, applied in order; a document stops at the first drop.
        lineage: a list, or any object with `append`, that receives one record per drop or change.
        stats: optional counters, updated as documents pass.
        batch_size: documents judged together by each filter's `filter_batch`.
    """
    stats = stats or ChainStats()
    it = iter(docs)
    while batch := list(islice(it, batch_size)):
        stats.docs_in += len(batch)
        rows: list[list[LineageRecord]] = [[] for _ in batch]
        alive = [True] * len(batch)
        features = TextFeatures()  # per batch: words of each text, shared by the prose filters
        for step in steps:
            idx = [i for i, doc in enumerate(batch) if alive[i] and step.applies_to(doc)]
            if not idx:
                continue
            if isinstance(step, Modifier):
                for i in idx:
                    try:
                        for reason, score in step.modify(batch[i]):
                            rows[i].append(LineageRecord(batch[i].id, step.name, "modified", reason, score))
                    except Exception as e:
                        _warn_once(step.name, e)
                        alive[i] = False
                        rows[i].append(LineageRecord(batch[i].id, step.name, "dropped", f"{step.name}_error", None))
                continue
            for i, result in zip(idx, _filter_batch(step, [batch[i] for i in idx], features, rows, idx)):
                if result is True:
                    continue
                if result is False:
                    reason, score = f"{step.name}_dropped", None
                elif result[0]:
                    continue
                else:
                    reason = result[1]
                    score = result[2] if len(result) > 2 else None
                rows[i].append(LineageRecord(batch[i].id, step.name, "dropped", reason, score))
                alive[i] = False
        for doc, doc_rows, kept in zip(batch, rows, alive):
            for rec in doc_rows:
                rec.lang = doc.lang  # as the chain left it: language ID's label on what it judged
                lineage.append(rec)
                if rec.action == "modified":
                    stats.modified[rec.reason] += 1
                else:
                    stats.dropped[rec.reason] += 1
                    stats.dropped_by_step[rec.step] += 1
            if kept:
                stats.docs_out += 1
                yield doc
        _count_fallbacks(batch, features, stats)


def _count_fallbacks(batch: list[Document], features: TextFeatures, stats: ChainStats) -> None:
    """Count the batch's documents whose language has no segmenter here."""
    stats.segmentation_fallback.update(lang for doc in batch if (lang := features.fallback_language(doc)) is not None)


def _filter_batch(
    step: Filter, docs: list[Document], features: TextFeatures, rows: list[list[LineageRecord]], idx: list[int]
) -> list[FilterResult]:
    """`step.filter_batch(docs)`, plus a `modified` row for each text the filter changed (C4 removes lines).

    If the batch call raises, every document is put back as it was and judged alone, so that only the documents
    the filter fails on are dropped as `<step>_error` (as when the chain ran one document at a time).
    """
    before = [(d.text, d.lang, d.lang_score) for d in docs]
    try:
        results = step.filter_batch(docs, features)
        if len(results) != len(docs):
            raise RuntimeError(f"filter_batch returned {len(results)} results for {len(docs)} documents")
    except Exception:
        results = []
        for doc, (text, lang, lang_score) in zip(docs, before):
            doc.text, doc.lang, doc.lang_score = text, lang, lang_score
            try:
                results.append(step.filter_batch([doc], features)[0])
            except Exception as e:
                _warn_once(step.name, e)
                doc.text, doc.lang, doc.lang_score = text, lang, lang_score
                results.append((False, f"{step.name}_error"))
    for k, (doc, (text_before, _, _)) in enumerate(zip(docs, before)):
        if doc.text is not text_before and doc.text != text_before:
            # A filter that also edits records it like a modifier does.
            reason = f"{step.name}_text_changed"
            changed = float(len(text_before) - len(doc.text))
            rows[idx[k]].append(LineageRecord(doc.id, step.name, "modified", reason, changed))
            if results[k] is True and not doc.text.strip():
                results[k] = (False, f"{step.name}_emptied_text")  # nothing left to train on
    return results
