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

import errno
import fnmatch
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ingest.sources import TREE_FORMATS, SourceSpec, link_in_root, resolve_paths, source_root
from ingest.streams import StreamBroken, bounded_lines, decoded_chunks, peek
from schemas import Document, QuarantineRecord, excerpt_of, make_doc_id

Record = Document | QuarantineRecord


class Skipped(NamedTuple):
    """An input record that is, by design, not a document (a WARC `request` or `warcinfo` record): counted
    under `reason`, neither kept nor quarantined."""

    source: str
    location: str
    reason: str


# File extension -> programming language, for code trees (the languages The Stack v2 weighs most).
CODE_EXTENSIONS = {
    ".py": "Python", ".pyi": "Python", ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".cxx": "C++",
    ".hpp": "C++", ".hh": "C++", ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".rs": "Rust", ".go": "Go", ".java": "Java", ".rb": "Ruby",
    ".kt": "Kotlin", ".scala": "Scala", ".swift": "Swift", ".cs": "C#", ".php": "PHP", ".sh": "Shell",
    ".lua": "Lua", ".r": "R", ".jl": "Julia", ".hs": "Haskell", ".ml": "OCaml", ".sql": "SQL",
    ".tex": "TeX", ".md": "Markdown", ".rst": "reStructuredText", ".toml": "TOML", ".yaml": "YAML",
    ".yml": "YAML", ".json": "JSON", ".html": "HTML", ".css": "CSS",
}  # fmt: skip

LICENSE_FILE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "COPYING.txt", "LICENSE-MIT")

# (SPDX id, patterns that must all appear), most specific first.
_LICENSE_PATTERNS: list[tuple[str, tuple[str, ...]]] = [
    ("PSF-2.0", ("PYTHON SOFTWARE FOUNDATION LICENSE",)),
    ("Apache-2.0", ("Apache License", "Version 2.0")),
    ("MIT", ("Permission is hereby granted, free of charge",)),
    ("BSD-3-Clause", ("Redistribution and use in source and binary forms", "Neither the name")),
    ("BSD-2-Clause", ("Redistribution and use in source and binary forms",)),
    ("LGPL-3.0", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 3")),
    ("LGPL-2.1", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1")),
    ("GPL-3.0", ("GNU GENERAL PUBLIC LICENSE", "Version 3")),
    ("GPL-2.0", ("GNU GENERAL PUBLIC LICENSE", "Version 2")),
    ("AGPL-3.0", ("GNU AFFERO GENERAL PUBLIC LICENSE",)),
    ("MPL-2.0", ("Mozilla Public License", "2.0")),
    ("Unlicense", ("This is free and unencumbered software released into the public domain",)),
    ("Zlib", ("provided 'as-is'", "must not be misrepresented")),
]

_BINARY_SNIFF_BYTES = 8192


def detect_license(text: str) -> str | None:
    """SPDX id of a LICENSE file's text, or None when no known template matches."""
    flat = re.sub(r"\s+", " ", text)
    for spdx, needles in _LICENSE_PATTERNS:
        if all(n.lower() in flat.lower() for n in needles):
            return spdx
    return None


def _quarantine(spec: SourceSpec, location: str, reason: str, raw: bytes | str = b"", detail: str | None = None,
                num_bytes: int | None = None) -> QuarantineRecord:  # fmt: skip
    return QuarantineRecord(
        source=spec.name,
        location=location,
        reason=reason,
        detail=detail,
        excerpt=excerpt_of(raw) if raw else None,
        num_bytes=num_bytes if num_bytes is not None else len(raw),
    )


def _check_text(spec: SourceSpec, location: str, text: str, raw: bytes | str) -> QuarantineRecord | None:
    """Shared checks on a decoded text: NUL bytes and emptiness."""
    if "\x00" in text:
        return _quarantine(spec, location, "nul_bytes", raw, detail=f"{text.count(chr(0))} NUL byte(s)")
    if not text.strip():
        return _quarantine(spec, location, "empty_text", raw)
    if not _encodable(text):
        return _quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate escape in the text")
    return None


def _encodable(text: str) -> bool:
    """False for a str that UTF-8 cannot encode (a lone surrogate from a JSON escape like "\\ud800")."""
    if text.isascii():  # the common case, without a copy of the text
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _make_doc(spec: SourceSpec, location: str, text: str, **fields) -> Document:
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
        return _quarantine(spec, location, "not_an_object", raw, detail=f"JSON {type(record).__name__}")
    text = _field_text(spec, record)
    if isinstance(text, tuple):
        return _quarantine(spec, location, text[0], raw, detail=text[1])
    bad = _check_text(spec, location, text, raw)
    if bad:
        return bad
    fields = _record_fields(spec, record)
    extra = json.dumps([fields.get("url"), fields.get("metadata")], ensure_ascii=False, default=str)
    if not _encodable(extra):
        return _quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate escape in url or metadata")
    return _make_doc(spec, location, text, path=path_str, **fields)


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
        head, chunks = peek(decoded_chunks(path), _BINARY_SNIFF_BYTES)
        binary = _not_json_lines(head)
        if binary:
            yield _quarantine(spec, rel, "binary_file", head, num_bytes=path.stat().st_size, detail=binary)
            return
        for line_no, (raw, size) in enumerate(bounded_lines(chunks, spec.max_doc_bytes), start=1):
            location = f"{rel}:{line_no}"
            if size > spec.max_doc_bytes:
                yield _quarantine(spec, location, "too_large", raw, num_bytes=size,
                                  detail=f"{size} bytes > max_doc_bytes={spec.max_doc_bytes}")  # fmt: skip
                continue
            if not raw.strip():
                continue  # blank lines are not records
            if b"\x00" in raw:  # json.loads would call a raw NUL an invalid control character
                yield _quarantine(spec, location, "nul_bytes", raw, detail=f"{raw.count(0)} raw NUL byte(s)")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield _quarantine(spec, location, "invalid_utf8", raw, detail=str(e))
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:  # also: ints over 4300 digits, deep nesting
                yield _quarantine(spec, location, "malformed_json", raw, detail=f"{type(e).__name__}: {e}")
                continue
            yield _record_to_doc(spec, location, record, raw, rel)
    except StreamBroken as e:
        cut = f"; the record cut by it ({e.partial_size} bytes) is lost" if e.partial_size else ""
        yield _quarantine(spec, f"{rel}:{line_no + 1}", e.reason, e.partial, num_bytes=e.partial_size,
                          detail=f"{e.detail}; {line_no} line(s) before it were read, the rest of the file "
                                 f"from decompressed byte {e.decoded_offset} is lost{cut}")  # fmt: skip
    except OSError as e:  # the file cannot be opened
        yield _quarantine(spec, f"{rel}:{line_no + 1}", "unreadable_file", detail=f"{type(e).__name__}: {e}")


# --- Parquet -----------------------------------------------------------------------------------------


# Decoded bytes per batch, about: rows per batch follow the row sizes (2 rows of 7 MB documents). A page is
# decoded whole, so a writer's page size (often a row group's rows, for big documents) is the floor.
_PARQUET_BATCH_BYTES = 16 * 1024 * 1024


def _batch_rows(row_group) -> int:  # noqa: ANN001 - pyarrow RowGroupMetaData
    """Rows per batch so that one batch holds about `_PARQUET_BATCH_BYTES` (1 to 1024 rows)."""
    per_row = row_group.total_byte_size / max(row_group.num_rows, 1)
    return max(1, min(1024, int(_PARQUET_BATCH_BYTES // max(per_row, 1))))


def _row_group_bytes(row_group) -> tuple[int, int]:  # noqa: ANN001 - pyarrow RowGroupMetaData
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
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        yield _quarantine(spec, rel, "unreadable_file", detail=f"{type(e).__name__}: {e}")
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
            except Exception as e:  # noqa: BLE001 - corrupt pages raise OSError, ArrowInvalid, ...
                first, end = _row_group_bytes(meta)
                yield _quarantine(spec, f"{rel}:{row_no + 1}", "unreadable_row_group", num_bytes=end - first,
                                  detail=f"row group {g} (file bytes {first}..{end}): rows {row_no + 1}..{group_end} "
                                         f"({group_end - row_no} rows) lost: {type(e).__name__}: {_one_line(e)}")  # fmt: skip
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
        return _quarantine(spec, location, "too_large", raw, num_bytes=len(text.encode("utf-8", "replace")))
    return _record_to_doc(spec, location, record, raw, rel)


# --- Text files --------------------------------------------------------------------------------------


def read_file_bytes(spec: SourceSpec, path: Path, location: str, binary_check: bool) -> bytes | QuarantineRecord:
    """A whole file's bytes, or why not (larger than `max_doc_bytes`, unreadable, NUL bytes when `binary_check`)."""
    try:
        size = path.stat().st_size
        if size > spec.max_doc_bytes:
            with open(path, "rb") as f:
                head = f.read(200)
            return _quarantine(spec, location, "too_large", head, num_bytes=size,
                               detail=f"{size} bytes > max_doc_bytes={spec.max_doc_bytes}")  # fmt: skip
        raw = path.read_bytes()
    except OSError as e:
        return _quarantine(spec, location, "unreadable_file", detail=f"{type(e).__name__}: {e}")
    if binary_check and b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        return _quarantine(spec, location, "binary_file", raw)
    return raw


def _read_file_text(spec: SourceSpec, path: Path, location: str) -> str | QuarantineRecord:
    """Decode a whole file as UTF-8, or say why not (size, binary, encoding)."""
    raw = read_file_bytes(spec, path, location, binary_check=spec.format in TREE_FORMATS)
    if isinstance(raw, QuarantineRecord):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return _quarantine(spec, location, "invalid_utf8", raw, detail=str(e))
    return _check_text(spec, location, text, raw) or text


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
    text = _read_file_text(spec, path, rel)
    if isinstance(text, QuarantineRecord):
        yield text
        return
    if spec.strip_front_matter:
        text = strip_front_matter(text)
        bad = _check_text(spec, rel, text, text[:200])
        if bad:
            yield bad
            return
    yield _make_doc(spec, rel, text, path=rel)


# --- Code trees --------------------------------------------------------------------------------------


def _tree_license(spec: SourceSpec, root: Path) -> tuple[str | None, str]:
    """License of a tree from its LICENSE file, else the sources file's `license`."""
    for name in LICENSE_FILE_NAMES:
        candidate = root / name
        if candidate.is_file() and not candidate.is_symlink():
            spdx = detect_license(candidate.read_text(encoding="utf-8", errors="replace"))
            if spdx:
                return spdx, f"{name} file"
            return spec.license or "LicenseRef-unknown", f"{name} file (unrecognised)"
    return spec.license, "sources file"


def _included(spec: SourceSpec, rel: str) -> bool:
    # fnmatch's * crosses '/', so "pkg/**/*.py" also needs its "pkg/*.py" form for top-level files.
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.replace("**/", "")) for pat in spec.include)


def _confined(path: Path, root: Path, outside: str) -> Path | tuple[str, str]:
    """`path` fully resolved when it stays inside `root` (a path without links, compared as it is), else
    (reason, detail); reads no byte of it.

    Reasons: `outside` (it resolves outside the root), `symlink_loop`, `unreadable_file` (a missing
    link target, a permission error on the way).
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink_loop", f"{type(e).__name__}: {e}"
        return "unreadable_file", f"{type(e).__name__}: {e}"
    if not real.is_relative_to(root):
        return outside, f"resolves to {real}, outside the root {root}"
    return real


class _TreeEntry(NamedTuple):
    rel: str  # path inside the tree
    path: Path  # the file (or, with a problem, the directory entry)
    problem: tuple[str, str] | None  # (reason, detail) when the entry is refused or unreadable


def _tree_entries(spec: SourceSpec, root: Path) -> Iterator[_TreeEntry]:
    """Every entry of a code tree the reader looks at, in reading order: the files with a known extension
    that `include` selects, links that leave the tree or loop, and directories that cannot be listed.

    Links are never descended; a link is only read when it resolves to a file inside the tree.
    """
    walk_errors: list[OSError] = []  # unreadable directories are quarantined, never skipped silently
    # The tree's real folder: `_check_path` has already held the tree itself to its source's root.
    real_root = Path(os.path.realpath(root))

    def error_entry(err: OSError) -> _TreeEntry:
        where = Path(err.filename).relative_to(root).as_posix() if err.filename else "?"
        return _TreeEntry(where, Path(err.filename or root), ("unreadable_file", f"{type(err).__name__}: {err}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=walk_errors.append):
        while walk_errors:
            yield error_entry(walk_errors.pop(0))
        dirnames.sort()
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)  # never descend through a link
                checked = _confined(here / d, real_root, "symlink_outside_tree")
                if isinstance(checked, tuple):
                    yield _TreeEntry((here / d).relative_to(root).as_posix(), here / d, checked)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in CODE_EXTENSIONS or not _included(spec, rel):
                continue
            if path.is_symlink():  # a loop or a link out of the tree is refused before any byte is read
                checked = _confined(path, real_root, "symlink_outside_tree")
                if isinstance(checked, tuple) and checked[0] != "unreadable_file":
                    yield _TreeEntry(rel, path, checked)
                    continue
            yield _TreeEntry(rel, path, None)  # (a missing link target: the reader says unreadable_file)
    for err in walk_errors:  # an error on the last directory walked
        yield error_entry(err)


def read_code_tree(spec: SourceSpec, root: Path, tree: str) -> Iterator[Record]:
    """One document per source file of a tree, language from the extension, license from LICENSE.

    Symlinks that leave the tree or loop are refused (quarantined), never followed; files with NUL bytes
    are quarantined as binary. Nothing is imported or executed.
    """
    license_id, license_from = _tree_license(spec, root)
    for item in tree_texts(spec, root, tree):
        if isinstance(item, QuarantineRecord):
            yield item
            continue
        location, path, text = item
        meta = {"language": CODE_EXTENSIONS[path.suffix.lower()], "license_from": license_from}
        yield _make_doc(spec, location, text, path=location, license=license_id, metadata=meta)


def tree_texts(spec: SourceSpec, root: Path, tree: str, suffixes: tuple[str, ...] | None = None,
               ) -> Iterator[tuple[str, Path, str] | QuarantineRecord]:  # fmt: skip
    """(location, path, text) of every file of a tree its reader looks at (only `suffixes` when given), or the
    quarantine row of an entry that is refused or unreadable."""
    for entry in _tree_entries(spec, root):
        location = f"{tree}/{entry.rel}"
        if entry.problem:
            yield _quarantine(spec, location, entry.problem[0], detail=entry.problem[1])
            continue
        if suffixes is not None and entry.path.suffix not in suffixes:
            continue
        text = _read_file_text(spec, entry.path, location)
        yield text if isinstance(text, QuarantineRecord) else (location, entry.path, text)


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
    checked = _confined(path, root, "symlink_outside_root")
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
            entries = sorted(_tree_entries(spec, path), key=lambda e: PurePosixPath(e.rel))
            files += [(f"{loc}/{e.rel}", e.path, e.problem is None) for e in entries]
        for location, f, follow in files:
            st = _stat(f, follow)
            if st is not None:
                out.append((location, st.st_size, st.st_mtime_ns))
    return out


def _read_web(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record | Skipped]:
    from ingest import web  # trafilatura and warcio are imported only when a web source is read

    return (web.read_warc if spec.format == "warc" else web.read_html)(spec, path, rel)


def _read_docstrings(spec: SourceSpec, root: Path, tree: str) -> Iterator[Record | Skipped]:
    from ingest.docstrings import read_docstring_tree  # (it imports this module)

    return read_docstring_tree(spec, root, tree)


def _read_pystrings(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    from ingest.pystrings import read_pystrings  # (it imports this module)

    return read_pystrings(spec, path, rel)


_READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "text": read_text, "code": read_code_tree,
            "docstrings": _read_docstrings, "pystrings": _read_pystrings, "warc": _read_web,
            "html": _read_web}  # fmt: skip


def read_path(spec: SourceSpec, path: Path, location: str) -> Iterator[Record | Skipped]:
    """The records of one entry of `resolve_paths(spec)` (a file, or a code tree): one ingest work unit.

    An entry that resolves outside its pattern's root (a symlink out of the data folder), or that loops,
    becomes one quarantine row, and no byte of it is read.
    """
    problem = _check_path(spec, path)
    if problem:
        return iter([_quarantine(spec, location, problem[0], detail=problem[1])])
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
        yield _quarantine(spec, location, "empty_folder", detail=detail)
    else:
        size = _size(path)
        detail = "the file holds no record" + (" (0 bytes)" if size == 0 else f" ({size} bytes)")
        yield _quarantine(spec, location, "empty_file", num_bytes=size, detail=detail)


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
