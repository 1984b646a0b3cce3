"""Readers: raw files in, `Document`s (or `QuarantineRecord`s with a reason) out, in a stable order.

Every record a reader looks at comes out as exactly one of the two, so that
records read = documents + quarantined. Nothing here executes or imports what it reads.

Quarantine reasons: malformed_json, not_an_object, invalid_utf8, nul_bytes (in the text, or raw in a JSON line),
empty_text, missing_text_field, text_not_string, too_large, binary_file (a text or code file, or a JSON Lines file
that is not text: one row for the file), symlink_outside_tree (a code tree's link out of the tree),
symlink_outside_root (a source's path that resolves outside its root, or goes through a link in the root as
written), symlink_loop, unreadable_file, truncated_file (a compressed file cut short), unreadable_row_group (a
damaged Parquet row group), empty_file / empty_folder (an input that holds no record at all: a 0-byte or
blank-lines-only file, a Parquet file of 0 rows, a code tree with no file to read; so that no input vanishes
without a trace); web pages (WARC, HTML) add theirs, listed in ingest/web.py.

The WARC reader also yields `Skipped` rows: records that are no page (a request, warcinfo, metadata), which the
ingest step counts in its stats (`skipped_<reason>`) instead of keeping or quarantining them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ingest.docstrings import read_docstring_tree
from ingest.pystrings import read_pystrings
from ingest.records import (
    BINARY_SNIFF_BYTES,
    Record,
    Skipped,
    check_text,
    encodable,
    make_doc,
    quarantine,
    read_file_text,
)
from ingest.sources import TREE_FORMATS, SourceSpec, link_in_root, resolve_paths, source_root
from ingest.streams import StreamBroken, bounded_lines, decoded_chunks, peek
from ingest.trees import LICENSE_FILE_NAMES, confined, read_code_tree, tree_entries
from schemas import QuarantineRecord

# --- JSONL -------------------------------------------------------------------------------------------


def _field_text(spec: SourceSpec, record: dict) -> str | tuple[str, str]:
    """The text of a record from `text_field`, or (reason, detail) when it cannot be had."""
    parts = []
    for key in spec.text_field:
        if key not in record or record[key] is None:
            return ("missing_text_field", f"field '{key}' is missing")
        value = record[key]
        if not isinstance(value, str):
            return ("text_not_string", f"field '{key}' is {type(value).__name__}, not a string")
        parts.append(value)
    return "\n\n".join(parts)


def _record_fields(spec: SourceSpec, record: dict) -> dict:
    fields: dict = {}
    if spec.url_field and isinstance(record.get(spec.url_field), str):
        fields["url"] = record[spec.url_field]
    if spec.metadata_fields:
        fields["metadata"] = {k: record[k] for k in spec.metadata_fields if k in record}
    return fields


def _record_to_doc(spec: SourceSpec, location: str, record: object, raw: bytes | str, path_str: str) -> Record:
    if not isinstance(record, dict):
        return quarantine(spec, location, "not_an_object", raw, detail=f"JSON {type(record).__name__}")
    text = _field_text(spec, record)
    if isinstance(text, tuple):
        return quarantine(spec, location, text[0], raw, detail=text[1])
    bad = check_text(spec, location, text, raw)
    if bad:
        return bad
    fields = _record_fields(spec, record)
    extra = json.dumps([fields.get("url"), fields.get("metadata")], ensure_ascii=False, default=str)
    if not encodable(extra):
        return quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate escape in url or metadata")
    return make_doc(spec, location, text, path=path_str, **fields)


def _not_json_lines(head: bytes) -> str | None:
    """Why the first decoded bytes of a JSON Lines file say it is a binary file, or None.

    NUL bytes alone do not decide: a text file with one damaged record keeps its other records (that line is
    `nul_bytes`). Binary is NUL bytes plus one of: not UTF-8, no JSON value at the start, or over 10% NUL (UTF-16).
    """
    nul = head.count(b"\x00")
    if not nul:
        return None
    try:
        head.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError as e:
        utf8 = e.start >= len(head) - 3  # a character cut by the sniff's end is not a sign of binary
    if not utf8:
        why = "not UTF-8"
    elif not head.lstrip(b" \t\r\n\x00").startswith((b"{", b"[")):
        why = "no JSON value at the start"
    elif nul * 10 > len(head):
        why = f"{nul * 100 // len(head)}% NUL bytes"
    else:
        return None
    return f"{nul} NUL byte(s) in the first {len(head)} bytes, {why}: not JSON Lines text; nothing else was read"


def read_jsonl(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per line of a JSONL file (plain, .gz or .zst).

    A damaged file keeps every record before the damage; the rest becomes one `truncated_file` or
    `unreadable_file` row at the first lost line, whose detail gives the byte offsets. A binary file (see
    `_not_json_lines`) is one `binary_file` row, not one row per "line" of it.
    """
    line_no = 0
    try:
        head, chunks = peek(decoded_chunks(path), BINARY_SNIFF_BYTES)
        binary = _not_json_lines(head)
        if binary:
            yield quarantine(spec, rel, "binary_file", head, num_bytes=path.stat().st_size, detail=binary)
            return
        for line_no, (raw, size) in enumerate(bounded_lines(chunks, spec.max_doc_bytes), start=1):
            location = f"{rel}:{line_no}"
            if size > spec.max_doc_bytes:
                yield quarantine(
                    spec,
                    location,
                    "too_large",
                    raw,
                    num_bytes=size,
                    detail=f"{size} bytes > max_doc_bytes={spec.max_doc_bytes}",
                )
                continue
            if not raw.strip():
                continue  # blank lines are not records
            if b"\x00" in raw:  # json.loads would call a raw NUL an invalid control character
                yield quarantine(spec, location, "nul_bytes", raw, detail=f"{raw.count(0)} raw NUL byte(s)")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield quarantine(spec, location, "invalid_utf8", raw, detail=str(e))
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:  # also: ints over 4300 digits, deep nesting
                yield quarantine(spec, location, "malformed_json", raw, detail=f"{type(e).__name__}: {e}")
                continue
            yield _record_to_doc(spec, location, record, raw, rel)
    except StreamBroken as e:
        cut = f"; the record cut by it ({e.partial_size} bytes) is lost" if e.partial_size else ""
        yield quarantine(
            spec,
            f"{rel}:{line_no + 1}",
            e.reason,
            e.partial,
            num_bytes=e.partial_size,
            detail=f"{e.detail}; {line_no} line(s) before it were read, the rest of the file "
            f"from decompressed byte {e.decoded_offset} is lost{cut}",
        )
    except OSError as e:  # the file cannot be opened
        yield quarantine(spec, f"{rel}:{line_no + 1}", "unreadable_file", detail=f"{type(e).__name__}: {e}")


# --- Parquet -----------------------------------------------------------------------------------------


# Decoded bytes per batch, about: rows per batch follow the row sizes (2 rows of 7 MB documents). A page is
# decoded whole, so a writer's page size (often a row group's rows, for big documents) is the floor.
_PARQUET_BATCH_BYTES = 16 * 1024 * 1024


def _batch_rows(row_group) -> int:
    """Rows per batch so that one batch holds about `_PARQUET_BATCH_BYTES` (1 to 1024 rows)."""
    per_row = row_group.total_byte_size / max(row_group.num_rows, 1)
    return max(1, min(1024, int(_PARQUET_BATCH_BYTES // max(per_row, 1))))


def _row_group_bytes(row_group) -> tuple[int, int]:
    """(first, end) byte offsets of a row group's column chunks in the file."""
    starts, end = [], 0
    for i in range(row_group.num_columns):
        col = row_group.column(i)
        first = min(o for o in (col.dictionary_page_offset, col.data_page_offset) if o is not None)
        starts.append(first)
        end = max(end, first + col.total_compressed_size)
    return (min(starts) if starts else 0), end


def read_parquet(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per row of a Parquet file, streamed in batches bounded by bytes.

    A damaged row group keeps the rows read before the damage; its other rows become one
    `unreadable_row_group` row (with the group's byte range), and the next row groups are read as usual.
    Row numbers come from the file's metadata, so they stay right after a damaged group.
    """
    import pyarrow.parquet as pq

    try:
        # buffer_size: stream column chunks page by page instead of loading a whole row group's chunk.
        pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False, page_checksum_verification=True)
    except Exception as e:
        yield quarantine(spec, rel, "unreadable_file", detail=f"{type(e).__name__}: {e}")
        return
    wanted = set(spec.text_field) | {spec.url_field} | set(spec.metadata_fields)
    columns = [c for c in pf.schema_arrow.names if c in wanted]
    row_no = 0
    for g in range(pf.num_row_groups):
        meta = pf.metadata.row_group(g)
        group_end = row_no + meta.num_rows
        batches = pf.iter_batches(batch_size=_batch_rows(meta), row_groups=[g], columns=columns)
        while True:
            try:
                batch = next(batches, None)
            except Exception as e:
                first, end = _row_group_bytes(meta)
                yield quarantine(
                    spec,
                    f"{rel}:{row_no + 1}",
                    "unreadable_row_group",
                    num_bytes=end - first,
                    detail=f"row group {g} (file bytes {first}..{end}): rows {row_no + 1}..{group_end} "
                    f"({group_end - row_no} rows) lost: {type(e).__name__}: {_one_line(e)}",
                )
                break
            if batch is None:
                break
            for record in batch.to_pylist():
                row_no += 1
                yield _parquet_record(spec, f"{rel}:{row_no}", record, rel)
        row_no = group_end


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _parquet_record(spec: SourceSpec, location: str, record: dict, rel: str) -> Record:
    # The excerpt from cut values: a 7 MB text is not serialised whole for 200 bytes of excerpt.
    short = {k: v[:200] if isinstance(v, str) else v for k, v in record.items()}
    raw = json.dumps(short, ensure_ascii=False, default=str)[:200]
    text = _field_text(spec, record)
    if not isinstance(text, tuple) and len(text.encode("utf-8", "surrogatepass")) > spec.max_doc_bytes:
        return quarantine(spec, location, "too_large", raw, num_bytes=len(text.encode("utf-8", "replace")))
    return _record_to_doc(spec, location, record, raw, rel)


# --- Text files --------------------------------------------------------------------------------------

_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: ")


def strip_front_matter(text: str) -> str:
    """Drop a leading YAML block (between `---` lines) or `Key: value` header block (RFC 822 style, as
    in package METADATA), up to the first blank line; text without one is returned unchanged."""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        return text[end + 5 :] if end >= 0 else text
    head, sep, body = text.partition("\n\n")
    if sep and all(_HEADER_LINE.match(line) or line[:1] in " \t" for line in head.splitlines()):
        return body
    return text


def read_text(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per text file."""
    text = read_file_text(spec, path, rel)
    if isinstance(text, QuarantineRecord):
        yield text
        return
    if spec.strip_front_matter:
        text = strip_front_matter(text)
        bad = check_text(spec, rel, text, text[:200])
        if bad:
            yield bad
            return
    yield make_doc(spec, rel, text, path=rel)


# --- One source entry: refused, or read by its format's reader ---------------------------------------


def _check_path(spec: SourceSpec, path: Path) -> tuple[str, str] | None:
    """Why one entry of `resolve_paths(spec)` must not be read (a link in its root as written, it resolves
    outside that root, it loops), or None. The root is compared as written: see ingest/sources.py."""
    root = source_root(spec, path)
    if root is None:
        return "symlink_outside_root", f"{path} is not under any path of source {spec.name!r}"
    link = link_in_root(root)
    if link is not None:
        return "symlink_outside_root", (
            f"{link} is a symlink in the source's root as written ({root}); a root is not widened through a "
            f"link: write the real path"
        )
    checked = confined(path, root, "symlink_outside_root")
    return checked if isinstance(checked, tuple) else None


def _stat(path: Path, follow: bool) -> os.stat_result | None:
    try:
        return path.stat() if follow else os.lstat(path)
    except OSError:
        return None  # gone, or unreadable: its reader says so; the fingerprint lists what is there


def input_file_stats(spec: SourceSpec) -> list[tuple[str, int, int]]:
    """(location, size, mtime_ns) of every file the source's reader would open: a changed input reruns
    its ingest step. (Times, like make: rewriting a file with the same bytes reruns ingest, whose output
    is then identical, so later steps still skip.) A refused entry (a link out of the root, a loop) is
    listed with the link's own stat: its target is never touched."""
    out = []
    for path, loc in resolve_paths(spec):
        if _check_path(spec, path):
            root = source_root(spec, path)
            link = link_in_root(root) if root is not None else None
            files = [(loc, link or path, False)]  # the link itself: nothing behind it is touched
        elif spec.format not in TREE_FORMATS:
            files = [(loc, path, True)]
        else:  # a code tree: its LICENSE file and the entries its reader looks at
            files = [(f"{loc}/{name}", path / name, True) for name in LICENSE_FILE_NAMES if (path / name).is_file()]
            entries = sorted(tree_entries(spec, path), key=lambda e: PurePosixPath(e.rel))
            files += [(f"{loc}/{e.rel}", e.path, e.problem is None) for e in entries]
        for location, f, follow in files:
            st = _stat(f, follow)
            if st is not None:
                out.append((location, st.st_size, st.st_mtime_ns))
    return out


def _read_web(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record | Skipped]:
    from ingest import web  # trafilatura and warcio are imported only when a web source is read

    return (web.read_warc if spec.format == "warc" else web.read_html)(spec, path, rel)


_READERS = {
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "text": read_text,
    "code": read_code_tree,
    "docstrings": read_docstring_tree,
    "pystrings": read_pystrings,
    "warc": _read_web,
    "html": _read_web,
}


def read_path(spec: SourceSpec, path: Path, location: str) -> Iterator[Record | Skipped]:
    """The records of one entry of `resolve_paths(spec)` (a file, or a code tree): one ingest work unit.

    An entry that resolves outside its pattern's root (a symlink out of the data folder), or that loops,
    becomes one quarantine row, and no byte of it is read.
    """
    problem = _check_path(spec, path)
    if problem:
        return iter([quarantine(spec, location, problem[0], detail=problem[1])])
    return _traced(spec, path, location, _READERS[spec.format](spec, path, location))


def _traced(
    spec: SourceSpec, path: Path, location: str, records: Iterator[Record | Skipped]
) -> Iterator[Record | Skipped]:
    """The records of one input, or one `empty_file` / `empty_folder` row when it has none (a 0-byte file, blank
    lines only, a Parquet file of 0 rows, a tree with no file to read), so that no input vanishes silently."""
    empty = True
    for record in records:
        empty = False
        yield record
    if not empty:
        return
    if path.is_dir():
        detail = f"no file with a known extension that `include` selects ({list(spec.include)})"
        yield quarantine(spec, location, "empty_folder", detail=detail)
    else:
        size = _size(path)
        detail = "the file holds no record" + (" (0 bytes)" if size == 0 else f" ({size} bytes)")
        yield quarantine(spec, location, "empty_file", num_bytes=size, detail=detail)


def _size(path: Path) -> int:
    st = _stat(path, follow=True)
    return st.st_size if st is not None else 0


def read_source(spec: SourceSpec, limit: int | None = None) -> Iterator[Record | Skipped]:
    """All records of one source, in sorted file order; at most `limit` records (`Skipped` rows aside) when given."""
    count = 0
    for path, rel in resolve_paths(spec):
        for record in read_path(spec, path, rel):
            yield record
            if isinstance(record, Skipped):
                continue
            count += 1
            if limit is not None and count >= limit:
                return
