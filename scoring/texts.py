"""The labelled texts a classifier learns from, and the one line fastText reads of a text.

A SOURCES argument is either a sources file (TOML, `[[source]]` tables; every document its readers produce, in
file order; quarantined records are skipped) or a finished stage run folder (the documents of its published
corpus, `<run>/corpus/docs`). Both give `Document`s, so the language (`lang`) and domain come along for the
per-language metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.layout import RunLayout
from schemas import Document


@dataclass(frozen=True)
class LabelledDocuments:
    """Documents already read (e.g. the annotated documents of `flows.classify train --labels`), given to
    `train_fasttext` in place of a SOURCES path; `name` stands for them in the card."""

    name: str
    documents: tuple[Document, ...]


class SourcesArgumentError(ValueError):
    """A SOURCES argument that is neither a sources file nor a finished run folder."""


def check_source(source: str | Path) -> None:
    """Refuse a SOURCES argument that is neither a valid sources file nor a finished run folder, before any reading.

    Raises:
        SourcesArgumentError: the message names the path and what was expected.
    """
    path = Path(source)
    if not path.exists():
        raise SourcesArgumentError(f"{path}: no such sources file or run folder")
    if path.is_file() and path.suffix == ".toml":
        from ingest.sources import SourcesError, check_sources_match, load_sources

        try:
            check_sources_match(load_sources(path))
        except SourcesError as e:
            raise SourcesArgumentError(str(e)) from e
        return
    if not (path.is_dir() and RunLayout(path).corpus_marker.is_file()):
        raise SourcesArgumentError(
            f"{path}: expected a sources file (.toml with [[source]] tables) or a finished stage run folder "
            "(one holding corpus/_SUCCESS.json)"
        )


def read_documents(source: str | Path) -> Iterator[Document]:
    """Every document of a sources file or of a finished run's corpus, in order (`check_source` first).

    Raises:
        SourcesArgumentError: `source` is neither (the message says what it expected).
    """
    from core.io import read_rows

    check_source(source)
    path = Path(source)
    if path.is_file():
        from ingest.readers import read_source
        from ingest.sources import load_sources

        for spec in load_sources(path):
            yield from (r for r in read_source(spec) if isinstance(r, Document))
        return
    yield from (Document.from_row(row) for row in read_rows(RunLayout(path).corpus_docs))


def fasttext_line(text: str) -> str:
    """The text as one line, as fastText reads it: every run of whitespace one space (DCLM joins the stripped
    lines with spaces; fastText splits words on whitespace, so the words it sees are the same).

    NOTE: fastText's `predict` refuses a newline, and its training file holds one example per line.
    """
    return " ".join(text.strip().split())
