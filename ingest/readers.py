"""Readers: raw files in, `Document`s (or `QuarantineRecord`s with a reason) out, in a stable order.

Every record a reader looks at comes out as exactly one of the two, so that
records read = documents + quarantined. Nothing here executes or imports what it reads.

Quarantine reasons: malformed_json, not_an_object, invalid_utf8, nul_bytes, empty_text,
missing_text_field, text_not_string, too_large, binary_file, symlink_outside_tree, unreadable_file.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ingest.sources import SourceSpec, resolve_paths
from schemas import Document, QuarantineRecord, excerpt_of, make_doc_id

Record = Document | QuarantineRecord

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


def _open_compressed(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _read_errors() -> tuple[type[BaseException], ...]:
    import zlib

    import zstandard

    return (OSError, EOFError, zlib.error, zstandard.ZstdError)


_READ_ERRORS = _read_errors()


def _bounded_lines(f: IO[bytes], max_bytes: int) -> Iterator[tuple[bytes | None, int]]:
    """Yield `(line, size)`; a line longer than `max_bytes` comes as `(first bytes, size)` without
    ever holding the whole line in memory, flagged by size > max_bytes."""
    reader = io.BufferedReader(f, buffer_size=1 << 20) if not isinstance(f, io.BufferedReader) else f
    while True:
        line = reader.readline(max_bytes + 1)
        if not line:
            return
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield line, len(line)
            continue
        head, size = line[:200], len(line)
        while not line.endswith(b"\n"):  # skip the rest of the oversized line in bounded chunks
            line = reader.readline(1 << 20)
            if not line:
                break
            size += len(line)
        yield head, size


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


def read_jsonl(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per line of a JSONL file (plain, .gz or .zst)."""
    line_no = 0
    try:
        with _open_compressed(path) as f:
            for line_no, (raw, size) in enumerate(_bounded_lines(f, spec.max_doc_bytes), start=1):
                location = f"{rel}:{line_no}"
                if size > spec.max_doc_bytes:
                    yield _quarantine(spec, location, "too_large", raw, num_bytes=size,
                                      detail=f"{size} bytes > max_doc_bytes={spec.max_doc_bytes}")  # fmt: skip
                    continue
                if not raw.strip():
                    continue  # blank lines are not records
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
    except _READ_ERRORS as e:  # corrupt gzip/zstd stream, unreadable file: the rest of the file is unreadable
        yield _quarantine(spec, f"{rel}:{line_no + 1}", "unreadable_file",
                          detail=f"{type(e).__name__}: {e} (the rest of the file could not be read)")  # fmt: skip


# --- Parquet -----------------------------------------------------------------------------------------


def read_parquet(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per row of a Parquet file, streamed in batches."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        yield _quarantine(spec, rel, "unreadable_file", detail=f"{type(e).__name__}: {e}")
        return
    wanted = set(spec.text_field) | {spec.url_field} | set(spec.metadata_fields)
    columns = [c for c in pf.schema_arrow.names if c in wanted]
    row_no = 0
    for batch in pf.iter_batches(batch_size=1024, columns=columns):
        for record in batch.to_pylist():
            row_no += 1
            location = f"{rel}:{row_no}"
            raw = json.dumps(record, ensure_ascii=False, default=str)[:200]
            text = _field_text(spec, record)
            if not isinstance(text, tuple) and len(text.encode("utf-8", "surrogatepass")) > spec.max_doc_bytes:
                yield _quarantine(spec, location, "too_large", raw, num_bytes=len(text.encode("utf-8", "replace")))
                continue
            yield _record_to_doc(spec, location, record, raw, rel)


# --- Text files --------------------------------------------------------------------------------------


def _read_file_text(spec: SourceSpec, path: Path, location: str) -> str | QuarantineRecord:
    """Decode a whole file as UTF-8, or say why not (size, binary, encoding)."""
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
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES] and spec.format == "code":
        return _quarantine(spec, location, "binary_file", raw)
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


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def read_code_tree(spec: SourceSpec, root: Path, tree: str) -> Iterator[Record]:
    """One document per source file of a tree, language from the extension, license from LICENSE.

    Symlinks that leave the tree are refused (quarantined), never followed; files with NUL bytes are
    quarantined as binary. Nothing is imported or executed.
    """
    license_id, license_from = _tree_license(spec, root)
    walk_errors: list[OSError] = []  # unreadable directories are quarantined, never skipped silently
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=walk_errors.append):
        while walk_errors:
            yield _walk_error(spec, root, tree, walk_errors.pop(0))
        dirnames.sort()
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)  # never descend through a link
                if not _inside(here / d, root):
                    rel = f"{tree}/{(here / d).relative_to(root).as_posix()}"
                    yield _quarantine(spec, rel, "symlink_outside_tree", detail=f"-> {os.readlink(here / d)}")
        for name in sorted(filenames):
            path = here / name
            rel_in_tree = path.relative_to(root).as_posix()
            language = CODE_EXTENSIONS.get(path.suffix.lower())
            if language is None or not _included(spec, rel_in_tree):
                continue
            location = f"{tree}/{rel_in_tree}"
            if path.is_symlink() and not _inside(path, root):
                yield _quarantine(spec, location, "symlink_outside_tree", detail=f"-> {os.readlink(path)}")
                continue
            text = _read_file_text(spec, path, location)
            if isinstance(text, QuarantineRecord):
                yield text
                continue
            meta = {"language": language, "license_from": license_from}
            yield _make_doc(spec, location, text, path=location, license=license_id, metadata=meta)
    for err in walk_errors:  # an error on the last directory walked
        yield _walk_error(spec, root, tree, err)


def _walk_error(spec: SourceSpec, root: Path, tree: str, err: OSError) -> QuarantineRecord:
    where = Path(err.filename).relative_to(root).as_posix() if err.filename else "?"
    return _quarantine(spec, f"{tree}/{where}", "unreadable_file", detail=f"{type(err).__name__}: {err}")


def input_file_stats(spec: SourceSpec) -> list[tuple[str, int, int]]:
    """(location, size, mtime_ns) of every file the source's reader would open: a changed input reruns
    its ingest step. (Times, like make: rewriting a file with the same bytes reruns ingest, whose output
    is then identical, so later steps still skip.)"""
    out = []
    for path, loc in resolve_paths(spec):
        if path.is_file():
            files = [(loc, path)]
        else:  # a code tree: its LICENSE file and the files with a known extension that `include` selects
            files = [(f"{loc}/{name}", path / name) for name in LICENSE_FILE_NAMES if (path / name).is_file()]
            files += [
                (f"{loc}/{rel}", f)
                for f in sorted(path.rglob("*"))
                if f.suffix.lower() in CODE_EXTENSIONS
                and _included(spec, rel := f.relative_to(path).as_posix())
                and f.is_file()
            ]
        for location, f in files:
            st = f.stat()
            out.append((location, st.st_size, st.st_mtime_ns))
    return out


_READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "text": read_text, "code": read_code_tree}


def read_path(spec: SourceSpec, path: Path, location: str) -> Iterator[Record]:
    """The records of one entry of `resolve_paths(spec)` (a file, or a code tree): one ingest work unit."""
    return _READERS[spec.format](spec, path, location)


def read_source(spec: SourceSpec, limit: int | None = None) -> Iterator[Record]:
    """All records of one source, in sorted file order; at most `limit` records when given."""
    count = 0
    for path, rel in resolve_paths(spec):
        for record in read_path(spec, path, rel):
            yield record
            count += 1
            if limit is not None and count >= limit:
                return
