"""Builds DOCUMENT_SCHEMA corpora (Hive-partitioned Parquet, as the stage flow's final step writes them)
for the sharding tests, from the read-only shared corpora. Nothing is copied into the repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from core.io import ParquetSink
from schemas import DOCUMENT_SCHEMA, Document, make_doc_id

# (file, domain, source, fields joined into the text)
FILES = [
    ("multilingual_udhr/udhr_full_selected.jsonl", "web", "udhr", ("text",)),
    ("code_permissive/code_files.jsonl", "code", "code_files", ("content",)),
    ("stem_math/gsm8k_test.jsonl", "stem", "gsm8k", ("question", "answer")),
    ("stem_math/math500_test.jsonl", "stem", "math500", ("problem", "solution")),
]


def iter_documents(corpora: Path, max_per_file: int | None = None) -> Iterator[Document]:
    for rel, domain, source, fields in FILES:
        with open(corpora / rel, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if max_per_file is not None and i >= max_per_file:
                    break
                row = json.loads(line)
                text = "\n\n".join(str(row[k]) for k in fields if row.get(k))
                if text.strip():
                    yield Document(make_doc_id(source, f"{rel}:{i}", text), text, source, domain)


def write_corpus(docs: list[Document], out: Path, rows_per_file: int = 100_000) -> Path:
    """Write documents like pipeline.steps.finalize does: docs/domain=<d>/source=<s>/part-*.parquet."""
    sinks: dict[tuple[str, str], ParquetSink] = {}
    for doc in docs:
        key = (doc.domain, doc.source)
        if key not in sinks:
            sinks[key] = ParquetSink(
                out / f"domain={doc.domain}" / f"source={doc.source}", DOCUMENT_SCHEMA, rows_per_file=rows_per_file
            )
        sinks[key].add(doc.to_row())
    for s in sinks.values():
        s.close()
    return out
