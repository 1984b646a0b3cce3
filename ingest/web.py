"""Web pages: WARC/WET archives and HTML files in, main-text documents with their URL and page signals out.

`format = "warc"` reads WARC files (`.warc`, `.warc.gz`, `.warc.zst`) and Common Crawl WET files (`.wet.gz`)
with warcio; `format = "html"` reads `.html`/`.htm` files (a glob, or a folder: every `*.htm*` file under it).

- A `response` (or `resource`) record whose payload is HTML becomes one document: its main text, extracted by
  trafilatura with the settings of datatrove's `Trafilatura` extractor (`favor_precision=True`,
  `include_comments=False`, `deduplicate=True`; datatrove/pipeline/extractors/trafilatura.py), as in FineWeb.
- A WET `conversion` record is already text (Common Crawl's own extraction) and is kept as it is.
- Every other record (`warcinfo`, `request`, `metadata`, `revisit`, a response with a non-2xx HTTP status or
  without HTTP, like a crawler's `dns:` records) is no page: it comes out as a `Skipped` row, counted by the
  ingest step in its stats (`skipped_warc_request`, ...), never as a document.

What a page keeps besides its text: `url` = WARC-Target-URI; in `metadata`, the WARC record id, date and type,
the HTTP status, the content type and the charset the payload was decoded with, the `<html lang>`, the
`<title>`, and counts (links, paragraphs, HTML and text characters, text/HTML ratio) for later quality filters.

Charsets are read as browsers read them (ingest/encodings.py): a byte order mark, the HTTP charset, a `<meta>` in
the first 1024 bytes, an XML declaration, each label mapped by the WHATWG Encoding Standard's table (`shift_jis` is
windows-31j, `iso-8859-1` is windows-1252, ...). A page that declares none, or one its bytes contradict (valid
UTF-8 under a legacy label, or bytes the label's codec cannot decode), is UTF-8 if its bytes are, else what
Firefox's detector says (chardetng, hinted by the URL's top-level domain). `metadata` keeps `charset` (the Python codec used), `charset_source` (bom, http, meta, xml, utf8, detected) and
`charset_declared` (the label the page gave, followed or not).

Quarantine reasons (on top of those of ingest/readers.py): not_html (a response whose payload is an image, a
PDF, ...), binary_payload (declared HTML, but NUL bytes), invalid_charset (no charset decodes the bytes: neither
the declared one, nor UTF-8, nor the detected one; or a WHATWG "replacement" label such as iso-2022-kr, which
browsers refuse too), invalid_utf8 (a WET conversion record, UTF-8 by its format, that is not), malformed_warc
(bytes that are not a WARC record: the rest of the file is lost, with its offset), malformed_http_headers,
unparsable_html, empty_extraction (trafilatura found no main text), extraction_failed; truncated_file /
unreadable_file (a damaged archive: every record before the damage is kept), too_large (against `max_doc_bytes`,
checked before the payload is read).

Document ids are content-keyed like every reader's (`make_doc_id(source, "file:record_number", text)`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.encodings import PRESCAN_BYTES, Charset, decode_html
from ingest.records import Record, Skipped, check_text, encodable, make_doc, quarantine, read_file_bytes
from ingest.sources import SourceSpec
from ingest.streams import StreamBroken, decoded_chunks
from schemas import QuarantineRecord

HTML_TYPES = ("text/html", "application/xhtml+xml")
PAGE_RECORD_TYPES = ("response", "resource")  # `resource`: a page archived without HTTP (wget --warc, browsers)
_READ_BYTES = 1 << 16  # payload bytes per read: a payload is never read past max_doc_bytes + this
_BINARY_SNIFF_BYTES = 8192
_TITLE_CHARS = 1000

_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)
_LOOKS_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)


# --- charset and signals ---------------------------------------------------------------------------------


def _decode(
    spec: SourceSpec, location: str, raw: bytes, declared: str | None, url: str | None
) -> tuple[str, Charset] | QuarantineRecord:
    """(text, charset) of an HTML payload, or its quarantine row (invalid_charset: no charset decodes it)."""
    text, charset = decode_html(raw, declared, url)
    if text is None:
        return quarantine(spec, location, "invalid_charset", raw, detail=charset)
    return text, charset


def _one_line(text: str | None, limit: int) -> str | None:
    return " ".join(text.split())[:limit] or None if text else None


def html_signals(tree: Any, html: str) -> dict[str, Any]:
    """Page-level signals of a parsed page, read before extraction changes the tree.

    Args:
        tree: the `<html>` element, as trafilatura's `load_html` parses it.
        html: the decoded page (for its size).
    """
    root = tree.getroottree().getroot()
    lang = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or root.get("xml:lang")
    return {
        "html_lang": _one_line(lang, 35),
        "title": _one_line(root.findtext(".//title"), _TITLE_CHARS),
        "num_links": len(root.xpath("//a[@href]")),
        "num_paragraphs": len(root.xpath("//p")),
        "html_chars": len(html),
    }


def extract_main_text(tree: Any) -> str | None:
    """The main text of a parsed page, by trafilatura with datatrove's `Trafilatura` settings.

    NOTE: `deduplicate=True` counts paragraphs in a process-wide LRU cache, so a paragraph seen on earlier
    pages would vanish from later ones and the output would depend on which pages a worker read before. The
    cache is emptied before each page: repeated paragraphs are still removed within a page, and a page's text
    is the same at any worker count (cross-page duplicates are the dedup step's job).
    """
    from trafilatura import extract
    from trafilatura.deduplication import LRU_TEST

    LRU_TEST.clear()
    return extract(tree, favor_precision=True, include_comments=False, deduplicate=True)


def _html_record(
    spec: SourceSpec, location: str, raw: bytes, declared: str | None, meta: dict[str, Any], **fields: Any
) -> Record:
    """One HTML payload (already within max_doc_bytes) to a document or a quarantine row."""
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        return quarantine(spec, location, "binary_payload", raw, detail="NUL bytes in a payload declared as HTML")
    decoded = _decode(spec, location, raw, declared, fields.get("url"))
    if isinstance(decoded, QuarantineRecord):
        return decoded
    html, charset = decoded
    if not html.strip():
        return quarantine(spec, location, "empty_text", raw)
    from trafilatura.utils import load_html

    try:
        tree = load_html(html)
    except Exception as e:
        return quarantine(spec, location, "unparsable_html", raw, detail=f"{type(e).__name__}: {e}")
    if tree is None:
        return quarantine(spec, location, "unparsable_html", raw, detail="lxml found no HTML tree")
    signals = html_signals(tree, html)
    try:
        text = extract_main_text(tree)
    except Exception as e:
        return quarantine(spec, location, "extraction_failed", raw, detail=f"{type(e).__name__}: {e}")
    if not text or not text.strip():
        return quarantine(
            spec,
            location,
            "empty_extraction",
            raw,
            detail=f"trafilatura found no main text in {len(html)} characters of HTML",
        )
    bad = check_text(spec, location, text, raw)
    if bad:
        return bad
    signals.update(
        charset=charset.codec,
        text_chars=len(text),
        text_html_ratio=round(len(text) / len(html), 4),
        extractor="trafilatura",
    )
    signals["charset_source"] = charset.source
    if charset.declared is not None:
        signals["charset_declared"] = charset.declared[:40]  # a label, bounded: it is the page's free text
    meta = {**meta, **signals}
    if not encodable(json.dumps([fields.get("url"), meta], ensure_ascii=False)):
        return quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate in the url or the title")
    return make_doc(spec, location, text, metadata=meta, **fields)


# --- HTML files ----------------------------------------------------------------------------------------


def read_html(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per HTML file: its main text, with the page signals in metadata (no url)."""
    raw = read_file_bytes(spec, path, rel, binary_check=True)
    yield raw if isinstance(raw, QuarantineRecord) else _html_record(spec, rel, raw, None, {}, path=rel)


# --- WARC / WET ------------------------------------------------------------------------------------------


class _ChunkFile:
    """A read-only file over `decoded_chunks`: warcio reads the decompressed archive from it (so .gz and .zst
    damage is found by streams.py, the same way as for JSONL), one chunk of about 1 MB held at a time."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._at = 0
        self.offset = 0  # decompressed bytes handed to warcio

    def read(self, n: int = -1) -> bytes:
        if self._at >= len(self._buf):
            self._buf, self._at = next(self._chunks, b""), 0
        end = len(self._buf) if n is None or n < 0 else self._at + n
        out = self._buf[self._at : end]
        self._at += len(out)
        self.offset += len(out)
        return out

    def tell(self) -> int:
        return self.offset

    def head(self) -> bytes:
        """The first bytes of the stream (its first chunk), without consuming them."""
        if self.offset == 0 and not self._buf:
            self._buf = next(self._chunks, b"")
        return self._buf[:64]


def _read_payload(stream: Any, limit: int) -> bytes:
    """At most `limit + 1` bytes of a payload (one more than allowed says it is too large)."""
    parts, size = [], 0
    while size <= limit:
        piece = stream.read(min(_READ_BYTES, limit + 1 - size))
        if not piece:
            break
        parts.append(piece)
        size += len(piece)
    return b"".join(parts)


def _mime(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip().lower() or None if content_type else None


def _warc_meta(record: Any) -> dict[str, Any]:
    h = record.rec_headers
    meta = {
        "warc_record_id": h.get_header("WARC-Record-ID"),
        "warc_date": h.get_header("WARC-Date"),
        "warc_type": record.rec_type,
    }
    for key, header in (
        ("warc_refers_to", "WARC-Refers-To"),
        ("warc_identified_payload_type", "WARC-Identified-Payload-Type"),
        ("warc_language", "WARC-Identified-Content-Language"),
    ):
        if h.get_header(header):
            meta[key] = h.get_header(header)
    return meta


def _warc_record(spec: SourceSpec, record: Any, location: str, rel: str) -> Record | Skipped:
    """One WARC record (its payload not yet read) to a document, a quarantine row or a `Skipped` row."""
    kind = record.rec_type
    is_page = kind in PAGE_RECORD_TYPES
    if not is_page and kind != "conversion":
        return Skipped(spec.name, location, f"warc_{kind}")
    meta = _warc_meta(record)
    url = record.rec_headers.get_header("WARC-Target-URI")
    fields = {"path": rel, **({"url": url} if url else {})}
    content_type = record.rec_headers.get_header("Content-Type")
    if kind == "response" and record.http_headers is None:
        return Skipped(spec.name, location, "warc_response_not_http")  # a crawler's dns: record, an ftp listing
    if record.http_headers is not None:
        try:
            status = int(record.http_headers.get_statuscode())
        except (TypeError, ValueError):
            return quarantine(
                spec, location, "malformed_http_headers", detail=f"status line {record.http_headers.statusline!r}"
            )
        meta["http_status"] = status
        if not 200 <= status < 300:
            return Skipped(spec.name, location, "http_status_not_2xx")  # redirects, errors: no page content
        content_type = record.http_headers.get_header("Content-Type")
    mime = _mime(content_type) or _mime(record.rec_headers.get_header("WARC-Identified-Payload-Type"))
    meta["content_type"] = mime
    length = int(record.length or 0)
    if length > spec.max_doc_bytes:  # checked on the header: the payload is skipped unread
        return quarantine(
            spec,
            location,
            "too_large",
            num_bytes=length,
            detail=f"record of {length} bytes > max_doc_bytes={spec.max_doc_bytes}",
        )
    if is_page and mime is not None and mime not in HTML_TYPES:
        head = record.content_stream().read(200)  # an excerpt only: images and PDFs are never read whole
        return quarantine(spec, location, "not_html", head, num_bytes=length, detail=f"content type {mime}")
    raw = _read_payload(record.content_stream(), spec.max_doc_bytes)
    if len(raw) > spec.max_doc_bytes:  # a small record that inflates (Content-Encoding: gzip) past the bound
        return quarantine(
            spec,
            location,
            "too_large",
            raw,
            num_bytes=len(raw),
            detail=f"decoded payload > max_doc_bytes={spec.max_doc_bytes}",
        )
    _drain(record)
    missing = getattr(record.raw_stream, "limit", 0)  # bytes of the block the file did not have
    if missing > 0:  # the file ended inside the record (an uncompressed archive cut short)
        return quarantine(
            spec,
            location,
            "truncated_file",
            raw,
            num_bytes=length - missing,
            detail=f"the file ends {missing} bytes before the end of this record ({length} bytes); the record is lost",
        )
    if not is_page:  # a WET conversion record: text already
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return quarantine(spec, location, "invalid_utf8", raw, detail=str(e))
        bad = check_text(spec, location, text, raw)
        if bad:
            return bad
        if not encodable(json.dumps([url, meta], ensure_ascii=False)):
            return quarantine(spec, location, "invalid_utf8", raw, detail="lone surrogate in the url")
        return make_doc(spec, location, text, metadata=meta, **fields)
    if mime is None and not _LOOKS_HTML.search(raw[:PRESCAN_BYTES]):
        return quarantine(spec, location, "not_html", raw, detail="no content type, and no HTML tag at the start")
    charset = _HEADER_CHARSET.search(content_type or "")
    return _html_record(spec, location, raw, charset.group(1) if charset else None, meta, **fields)


def _drain(record: Any) -> None:
    """Read what is left of a record's block (chunked-encoding trailers), so that its LimitReader says whether
    the block was complete (bounded: the block is at most max_doc_bytes, checked before)."""
    while record.raw_stream.read(_READ_BYTES):
        pass


def read_warc(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record | Skipped]:
    """One row per WARC record, location `file:N` (N counts every record of the file from 1).

    A damaged archive keeps every record before the damage: a cut-short or corrupt .gz/.zst, or bytes that are
    not a WARC record, end the file with one quarantine row (truncated_file, unreadable_file, malformed_warc) at
    the first lost record, whose detail gives the decompressed byte offset where the loss starts.
    """
    from warcio.archiveiterator import ArchiveIterator

    n = 0  # records read whole
    current = 1  # the record being read (where a break in the file is reported)
    src = _ChunkFile(decoded_chunks(path))
    it = ArchiveIterator(src)
    records = iter(it)
    try:
        not_warc = _not_a_warc(spec, path, rel, src.head())
        if not_warc is not None:
            yield not_warc
            return
        while True:
            current = n + 1
            try:
                record = next(records, None)
            except (StreamBroken, OSError):
                raise
            except Exception as e:
                yield quarantine(
                    spec,
                    f"{rel}:{current}",
                    "malformed_warc",
                    detail=f"{type(e).__name__}: {_first_line(e)}; {n} record(s) before it were read, "
                    f"the rest of the file from decompressed byte {it.offset} is lost",
                )
                return
            if record is None:
                return
            if record.format != "warc":  # warcio reads any line of 5 words as an ARC header: not our input
                yield quarantine(
                    spec,
                    f"{rel}:{current}",
                    "malformed_warc",
                    detail=f"no WARC/1.x version line (warcio read it as {record.format.upper()}); "
                    f"{n} record(s) before it were read, the rest of the file from "
                    f"decompressed byte {it.offset} is lost",
                )
                return
            row = _warc_row(spec, record, f"{rel}:{current}", rel, it.offset)
            n += 1
            yield row
    except StreamBroken as e:
        lost_from = it.offset
        yield quarantine(
            spec,
            f"{rel}:{current}",
            e.reason,
            num_bytes=src.offset - lost_from,
            detail=f"{e.detail}; {n} record(s) before it were read, the rest of the file from "
            f"decompressed byte {lost_from} is lost",
        )
    except OSError as e:  # the file cannot be opened (decoded_chunks opens it on the first read)
        yield quarantine(spec, f"{rel}:{current}", "unreadable_file", detail=f"{type(e).__name__}: {e}")


def _not_a_warc(spec: SourceSpec, path: Path, rel: str, head: bytes) -> QuarantineRecord | None:
    """The quarantine row of a file whose first bytes are not a WARC version line (nothing of it is read), or None.

    Checked before warcio reads because warcio takes any first line of 5 words for an ARC header, and reads a first
    "line" of a binary file whole, however long.
    """
    if not head or head.lstrip(b"\r\n").startswith(b"WARC/"):
        return None
    packed = head.startswith((b"\x1f\x8b", b"(\xb5/\xfd"))  # gzip, zstd magic
    hint = "; it is compressed: name it .gz or .zst" if packed else ""
    return quarantine(
        spec,
        f"{rel}:1",
        "malformed_warc",
        head,
        num_bytes=path.stat().st_size,
        detail=f"the file does not start with a WARC/1.x version line{hint}; nothing was read",
    )


def _warc_row(spec: SourceSpec, record: Any, location: str, rel: str, start: int) -> Record | Skipped:
    """One WARC record (starting at decompressed byte `start`) to its row; a record warcio cannot parse is one
    malformed_warc row, and the file goes on (a broken stream or an OS error still ends it)."""
    try:
        return _warc_record(spec, record, location, rel)
    except (StreamBroken, OSError):
        raise
    except Exception as e:
        return quarantine(
            spec,
            location,
            "malformed_warc",
            detail=f"record at decompressed byte {start}: {type(e).__name__}: {_first_line(e)}",
        )


def _first_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
