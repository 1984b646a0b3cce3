"""Byte streams of raw input files, decompressed in bounded pieces, and a bounded line splitter.

A damaged compressed file (cut short, or with corrupt bytes in the middle) yields every byte that could
be decoded before the damage and then raises `StreamBroken`, which says where the damage is; readers keep
the records before it and quarantine the rest. No call holds more than a bounded amount of data:
`_OUT_BYTES` of decompressed output (zstd input goes in `_ZSTD_IN_BYTES` pieces, since zstandard's
decompressobj has no output limit: a piece of a frame of one repeated byte expands to at most ~8 MB, 64
run-length blocks of 128 KB) plus one line of at most `max_bytes`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_OUT_BYTES = 1 << 20  # decompressed bytes handed on per chunk (about)
_ZSTD_IN_BYTES = 256  # compressed bytes per zstd call: bounds its output (no max_length in zstandard)
_EXCERPT = 200


class StreamBroken(Exception):
    """The stream cannot go on past this point.

    Args:
        reason: `truncated_file` (the file ends before the compressed stream's end marker) or
            `unreadable_file` (corrupt compressed data, or an I/O error while reading).
        detail: what broke and at which compressed byte offset.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        # Filled in by `bounded_lines`: the incomplete line cut by the break, and where the lost data starts.
        self.partial: bytes = b""
        self.partial_size = 0
        self.decoded_offset = 0


class _Counting:
    """A file wrapper that counts the bytes read from it (the compressed offset reached)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:
        n = self.f.readinto(b)
        self.pos += n or 0
        return n

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def decoded_chunks(path: Path) -> Iterator[bytes]:
    """The bytes of a file (`.gz` and `.zst` decompressed), in chunks of about 1 MB.

    Raises:
        OSError: the file cannot be opened (before any chunk).
        StreamBroken: after every decodable byte before the damage has been yielded.
    """
    f = open(path, "rb")
    with f:
        size = _size(f)
        src = _Counting(f)
        if path.suffix == ".gz":
            yield from _gunzip(src, size)
        elif path.suffix == ".zst":
            yield from _unzstd(src, size)
        else:
            while True:
                try:
                    chunk = src.read(_OUT_BYTES)
                except OSError as e:
                    raise StreamBroken(
                        "unreadable_file", f"{type(e).__name__}: {e} at byte {src.pos} of {size}"
                    ) from e
                if not chunk:
                    return
                yield chunk


def _size(f: IO[bytes]) -> int:
    return os.fstat(f.fileno()).st_size


def _gunzip(src: _Counting, size: int) -> Iterator[bytes]:
    # GzipFile.read1 returns the output of one bounded decompression call, so every byte decoded before a
    # failure has already been handed on when EOFError / BadGzipFile / zlib.error comes; it also handles
    # multi-member files and zero padding after the last member, as gunzip does.
    gz = gzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[arg-type]
    while True:
        try:
            chunk = gz.read1(_OUT_BYTES)
        except EOFError as e:
            raise StreamBroken(
                "truncated_file",
                f"gzip stream cut short: the file ends at byte {size} before the stream's end marker ({e})",
            ) from e
        except (OSError, zlib.error) as e:
            raise StreamBroken(
                "unreadable_file",
                f"corrupt gzip data near compressed byte {src.pos} of {size}: {type(e).__name__}: {e}",
            ) from e
        if not chunk:
            return
        yield chunk


def _unzstd(src: _Counting, size: int) -> Iterator[bytes]:
    # A decompressobj (not stream_reader) because only it says whether a frame ended (`eof`): stream_reader
    # returns a cut-short file's whole blocks and then b"" as if the file were complete.
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    fed = False  # some bytes of the current frame were fed
    out: list[bytes] = []
    held = 0
    while True:
        try:
            buf = src.read(_ZSTD_IN_BYTES)
        except OSError as e:
            yield from out
            raise StreamBroken("unreadable_file", f"{type(e).__name__}: {e} at byte {src.pos} of {size}") from e
        if not buf:
            break
        while buf:
            if d.eof:  # a new frame (files may hold several, e.g. from pzstd or appended writes)
                d, fed = dctx.decompressobj(), False
            try:
                data = d.decompress(buf)
            except zstandard.ZstdError as e:
                yield from out
                raise StreamBroken(
                    "unreadable_file", f"corrupt zstd data near compressed byte {src.pos} of {size}: ZstdError: {e}"
                ) from e
            fed = True
            buf = d.unused_data if d.eof else b""
            if len(data) >= _OUT_BYTES:  # a burst (very repetitive text): handed on in slices, never joined
                if out:
                    yield b"".join(out)
                    out, held = [], 0
                for i in range(0, len(data), _OUT_BYTES):
                    yield data[i : i + _OUT_BYTES]
            elif data:
                out.append(data)
                held += len(data)
                if held >= _OUT_BYTES:
                    yield b"".join(out)
                    out, held = [], 0
    yield from out
    if fed and not d.eof:
        raise StreamBroken("truncated_file", f"zstd stream cut short: the file ends at byte {size} inside a frame")


def bounded_lines(chunks: Iterator[bytes], max_bytes: int) -> Iterator[tuple[bytes, int]]:
    """Yield `(line, size)` for each line of a chunk stream, the newline kept.

    A line longer than `max_bytes` comes as `(its first 200 bytes, size)`, flagged by size > max_bytes, and is
    never held whole: memory stays within one chunk plus `max_bytes`.

    Raises:
        StreamBroken: from `chunks`, with `partial`, `partial_size` and `decoded_offset` set to the line cut
            by the break (its first 200 bytes, its size so far) and the decompressed offset where it starts.
    """
    pending: list[bytes] = []  # pieces of the current line, while it is within max_bytes
    pending_size = 0  # bytes of the current line so far, newline excluded
    head = b""  # first bytes of an oversized line being skipped
    offset = 0  # decompressed offset of the current line's first byte
    try:
        for chunk in chunks:
            pieces = chunk.split(b"\n")  # the last piece has no newline (yet)
            for i, piece in enumerate(pieces):
                complete = i < len(pieces) - 1
                if head or pending_size + len(piece) > max_bytes:
                    if not head:  # the line just became oversized: keep its first bytes, drop the rest
                        head = (b"".join(pending) + piece[:_EXCERPT])[:_EXCERPT]
                        pending = []
                elif piece:
                    pending.append(piece)
                pending_size += len(piece)
                if complete:
                    size = pending_size + 1
                    yield (head or b"".join(pending) + b"\n"), size
                    offset += size
                    pending, pending_size, head = [], 0, b""
        if pending_size:  # a last line without a newline
            yield (head or b"".join(pending)), pending_size
    except StreamBroken as e:
        e.partial = head or b"".join(pending)[:_EXCERPT]
        e.partial_size = pending_size
        e.decoded_offset = offset
        raise


def peek(chunks: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `n` bytes of a chunk stream (fewer when it is shorter or breaks), and the whole stream again.

    Holds the chunks it read to get them (about one) until the returned stream hands them on. A `StreamBroken`
    met while peeking is raised again by the returned stream after the bytes before it, as the original stream
    would have; an `OSError` on opening the file is raised here.
    """
    held: list[bytes] = []
    head: list[bytes] = []
    size = 0
    broken: StreamBroken | None = None
    try:
        while size < n:
            chunk = next(chunks, None)
            if chunk is None:
                break
            held.append(chunk)
            head.append(chunk[: n - size])
            size += len(head[-1])
    except StreamBroken as e:
        broken = e

    def replay() -> Iterator[bytes]:
        while held:
            yield held.pop(0)
        if broken is not None:
            raise broken
        yield from chunks

    return b"".join(head), replay()
