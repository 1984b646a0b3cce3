"""What every reader of ingest/ shares: the records it yields, the document and quarantine rows it makes, the
checks on a decoded text, and a whole file read (or refused with its reason).

A reader turns each input record into exactly one `Document` or `QuarantineRecord` (or a `Skipped` row for a
record that is by design no document), so that records read = documents + quarantined.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ingest.sources import TREE_FORMATS, SourceSpec
from schemas import Document, QuarantineRecord, excerpt_of, make_doc_id

Record = Document | QuarantineRecord


class Skipped(NamedTuple):
    """An input record that is, by design, not a document (a WARC `request` or `warcinfo` record): counted
    under `reason`, neither kept nor quarantined."""

    source: str
    location: str
    reason: str


BINARY_SNIFF_BYTES = 8192


def quarantine(
    spec: SourceSpec,
    location: str,
    reason: str,
    raw: bytes | str = b"",
    detail: str | None = None,
    num_bytes: int | None = None,
) -> QuarantineRecord:
    """The quarantine row of an input record that is no document.

    Args:
        location: where the record is (`file:line`, `tree/path`, a WARC offset).
        reason: a stable snake_case reason (`invalid_utf8`, `too_large`, ...).
        raw: the record's bytes or text, for the excerpt and (unless `num_bytes`) the size.
        detail: one line that says more than the reason.
    """
    return QuarantineRecord(
        source=spec.name,
        location=location,
        reason=reason,
        detail=detail,
        excerpt=excerpt_of(raw) if raw else None,
        num_bytes=num_bytes if num_bytes is not None else len(raw),
    )


def check_text(spec: SourceSpec, location: str, text: str, raw: bytes | str) -> QuarantineRecord | None:
    """Shared checks on a decoded text: NUL bytes and emptiness."""
    if "\x00" in text:
        return quarantine(spec, location, "nul_bytes", raw, detail=f"{text.count(chr(0))} NUL byte(s)")
    if not text.strip():
        return quarantine(spec, location, "empty_text", raw)
    if not encodable(text):
        return quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate escape in the text")
    return None


def encodable(text: str) -> bool:
    """False for a str that UTF-8 cannot encode (a lone surrogate from a JSON escape like "\\ud800")."""
    if text.isascii():  # the common case, without a copy of the text
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def make_doc(spec: SourceSpec, location: str, text: str, **fields) -> Document:
    """A document of source `spec` read at `location`; its id hashes both with the text.

    Args:
        fields: more `Document` fields (path, url, metadata); `license` overrides the source's.
    """
    return Document(
        id=make_doc_id(spec.name, location, text),
        text=text,
        source=spec.name,
        domain=spec.domain,
        lang=spec.lang,
        lang_score=1.0 if spec.lang else None,
        license=fields.pop("license", spec.license),
        **fields,
    )


def read_file_bytes(spec: SourceSpec, path: Path, location: str, binary_check: bool) -> bytes | QuarantineRecord:
    """A whole file's bytes, or why not (larger than `max_doc_bytes`, unreadable, NUL bytes when `binary_check`)."""
    try:
        size = path.stat().st_size
        if size > spec.max_doc_bytes:
            with open(path, "rb") as f:
                head = f.read(200)
            return quarantine(
                spec,
                location,
                "too_large",
                head,
                num_bytes=size,
                detail=f"{size} bytes > max_doc_bytes={spec.max_doc_bytes}",
            )
        raw = path.read_bytes()
    except OSError as e:
        return quarantine(spec, location, "unreadable_file", detail=f"{type(e).__name__}: {e}")
    if binary_check and b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        return quarantine(spec, location, "binary_file", raw)
    return raw


def read_file_text(spec: SourceSpec, path: Path, location: str) -> str | QuarantineRecord:
    """Decode a whole file as UTF-8, or say why not (size, binary, encoding)."""
    raw = read_file_bytes(spec, path, location, binary_check=spec.format in TREE_FORMATS)
    if isinstance(raw, QuarantineRecord):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return quarantine(spec, location, "invalid_utf8", raw, detail=str(e))
    return check_text(spec, location, text, raw) or text
