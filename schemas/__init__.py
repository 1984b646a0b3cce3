"""Arrow schemas shared by every corpusforge step, and the in-memory `Document` they describe.

Three tables live in a run directory:
- `docs`: one row per document (Hive-partitioned by domain and source).
- `lineage`: one row per decision a step took about a document (dropped, modified, or kept with a
  duplicate cluster), so that `SELECT * FROM lineage WHERE doc_id = ?` answers "why is it missing?".
- `quarantine`: one row per input record that could not become a document (bad JSON, invalid UTF-8,
  binary file, ...), with its reason. Records read = documents ingested + quarantined.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

# `metadata` key of a dedup survivor: the input documents it stands for (its duplicate cluster's size, copies of
# copies included); written by dedup/steps.py, read by the mixture's rehydration (sharding/mixture.py).
DUP_CLUSTER_SIZE = "dup_cluster_size"
DOMAINS = (
    "web",
    "stem",
    "code",
    "books",
)  # books: long-form works (filters/books_quality.py, gutenberg_boilerplate.py)
ACTIONS = ("kept", "dropped", "modified")

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("url", pa.string()),
        pa.field("path", pa.string()),
        pa.field("license", pa.string()),
        pa.field("metadata", pa.string()),  # JSON object; DuckDB reads it with json_extract
        # Scorer name -> score (`[scorers.<name>]`, filters/scorer.py); null when no scorer ran. DuckDB reads a
        # MAP(VARCHAR, DOUBLE): `WHERE scores['edu'] >= 0.5`.
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
    ]
)

LINEAGE_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("dup_cluster_id", pa.string()),
        pa.field("dup_cluster_size", pa.int32()),
        # The document's language when the step decided (language ID's label, or the source's): a dropped
        # document is nowhere else, so the funnel per language reads it here.
        pa.field("lang", pa.string()),
        # The cutoff a score was held against, where a run-level one decided (a scorer's `keep_top` percentile,
        # filters/score_cut.py): the lineage row then says the score, and the cutoff it fell below.
        pa.field("threshold", pa.float64()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),  # file[:line] of the bad record
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("excerpt", pa.string()),  # first bytes, backslash-escaped, for a human to look at
        pa.field("num_bytes", pa.int64()),
    ]
)

# One row per synthetic generation, kept or rejected (synth/step.py; the `synthetic` DuckDB view). No server,
# timing or attempt count: those differ between runs, the published bytes must not.
GENERATION_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # the document it became (or would have become)
        pa.field("key", pa.string(), nullable=False),  # request key: hash of all that determines the output
        pa.field("source", pa.string()),
        pa.field("seed_doc_id", pa.string()),
        pa.field("seed_domain", pa.string()),
        pa.field("seed_lang", pa.string()),
        pa.field("template", pa.string()),
        pa.field("template_version", pa.int32()),
        pa.field("template_sha256", pa.string()),
        pa.field("format", pa.string()),
        pa.field("model", pa.string()),  # path of the Hugging Face folder
        pa.field("model_sha256", pa.string()),  # sha256 over its weight files
        pa.field("sampling", pa.string()),  # JSON of the request's sampling parameters (incl. its seed)
        pa.field("status", pa.string()),  # ok | rejected
        pa.field("reason", pa.string()),  # why rejected: empty, truncated, unparsable, schema_violation, ...
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("text", pa.string()),  # the raw generation
    ]
)


class SchemaError(ValueError):
    """A batch does not conform to its schema; the message names the field."""


def make_doc_id(source: str, location: str, text: str) -> str:
    """Stable content-hash id of a document.

    The location (file and line or row) is part of the hash so that two identical texts read from two
    places keep two ids: exact dedup then records which copy survived and which was dropped.
    """
    h = hashlib.blake2b(digest_size=16)
    for part in (source, location, text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(slots=True)
class Document:
    """One document as it moves through the pipeline (a row of DOCUMENT_SCHEMA)."""

    id: str
    text: str
    source: str
    domain: str
    lang: str | None = None
    lang_score: float | None = None
    url: str | None = None
    path: str | None = None
    license: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "domain": self.domain,
            "lang": self.lang,
            "lang_score": self.lang_score,
            "url": self.url,
            "path": self.path,
            "license": self.license,
            # default=str: a timestamp or bytes value from a Parquet column becomes its text form
            "metadata": json.dumps(self.metadata, sort_keys=True, ensure_ascii=False, default=str),
            "scores": sorted(self.scores.items()) if self.scores is not None else None,  # sorted: same bytes
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Document:
        meta = row.get("metadata")
        return cls(
            id=row["id"],
            text=row["text"],
            source=row["source"],
            domain=row["domain"],
            lang=row.get("lang"),
            lang_score=row.get("lang_score"),
            url=row.get("url"),
            path=row.get("path"),
            license=row.get("license"),
            metadata=json.loads(meta) if meta else {},
            # A run written before the column existed has none: its documents have no scores.
            scores=dict(row["scores"]) if row.get("scores") is not None else None,
        )


@dataclass(slots=True)
class LineageRecord:
    """One decision about one document (a row of LINEAGE_SCHEMA)."""

    doc_id: str
    step: str
    action: str
    reason: str | None = None
    score: float | None = None
    dup_cluster_id: str | None = None
    dup_cluster_size: int | None = None
    lang: str | None = None
    threshold: float | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "step": self.step,
            "action": self.action,
            "reason": self.reason,
            "score": self.score,
            "dup_cluster_id": self.dup_cluster_id,
            "dup_cluster_size": self.dup_cluster_size,
            "lang": self.lang,
            "threshold": self.threshold,
        }


@dataclass(slots=True)
class QuarantineRecord:
    """An input record that could not become a document (a row of QUARANTINE_SCHEMA)."""

    source: str
    location: str
    reason: str
    detail: str | None = None
    excerpt: str | None = None
    num_bytes: int | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "location": self.location,
            "reason": self.reason,
            "detail": self.detail,
            "excerpt": self.excerpt,
            "num_bytes": self.num_bytes,
        }


def excerpt_of(raw: bytes | str, limit: int = 200) -> str:
    """A short printable excerpt of a bad record, safe to store whatever the bytes were."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return raw[:limit].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


# Allowed values per field, checked on top of the Arrow types.
_ENUMS = ((DOCUMENT_SCHEMA, {"domain": DOMAINS}), (LINEAGE_SCHEMA, {"action": ACTIONS}))


def validate_batch(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> None:
    """Reject a batch that does not conform to `schema`, naming the offending field.

    Checks: every field present with the right type, no nulls in non-nullable fields, enum fields
    (domain, action) within their allowed values.
    """
    names = set(batch.schema.names)
    for f in schema:
        if f.name not in names:
            raise SchemaError(f"field '{f.name}' is missing (expected {f.type})")
        col = batch.column(batch.schema.get_field_index(f.name))
        if not col.type.equals(f.type):
            raise SchemaError(f"field '{f.name}' has type {col.type}, expected {f.type}")
        if not f.nullable and col.null_count:
            raise SchemaError(f"field '{f.name}' has {col.null_count} null value(s) but is required")
    extra = names - set(schema.names)
    if extra:
        raise SchemaError(f"unexpected field(s) {sorted(extra)}; the schema has {schema.names}")
    enums = next((e for s, e in _ENUMS if s.equals(schema)), {})
    for name, allowed in enums.items():
        values = set(batch.column(batch.schema.get_field_index(name)).to_pylist()) - {None}
        bad = values - set(allowed)
        if bad:
            raise SchemaError(f"field '{name}' has value(s) {sorted(bad)}; allowed: {list(allowed)}")


def to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a validated table from row dicts."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    validate_batch(table, schema)
    return table
