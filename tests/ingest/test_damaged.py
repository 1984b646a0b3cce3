"""Damaged inputs (cut-short or corrupt compressed files, damaged Parquet row groups) keep what is readable;
links out of a source's root, or in a loop, are quarantined without reading a byte of their target."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from ingest.readers import input_file_stats, read_path, read_source
from ingest.sources import load_sources, resolve_paths
from ingest.streams import bounded_lines
from schemas import Document, QuarantineRecord, make_doc_id

SECRET = "root:x:0:0:TOP-SECRET-PASSWD-LINE"


def _spec(tmp_path: Path, body: str):
    (tmp_path / "sources.toml").write_text(body)
    (spec,) = load_sources(tmp_path / "sources.toml")
    return spec


def _jsonl_spec(tmp_path: Path, pattern: str = "data/*"):
    return _spec(tmp_path, f'[[source]]\nname = "t"\ndomain = "web"\nformat = "jsonl"\npath = "{pattern}"\n')


def _rows(n: int) -> bytes:
    return b"".join(json.dumps({"text": f"document number {i} " + "words " * 40}).encode() + b"\n" for i in range(n))


def _split(recs):
    recs = list(recs)
    docs = [r for r in recs if isinstance(r, Document)]
    bad = [r for r in recs if isinstance(r, QuarantineRecord)]
    return docs, bad


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_compressed_jsonl_keeps_every_record_before_the_cut(tmp_path, suffix):
    payload = _rows(2000)
    packed = gzip.compress(payload) if suffix == ".gz" else zstandard.ZstdCompressor().compress(payload)
    data = tmp_path / "data"
    data.mkdir()
    (data / f"a.jsonl{suffix}").write_bytes(packed[: len(packed) * 3 // 4])  # an interrupted download
    recs = list(read_source(_jsonl_spec(tmp_path)))
    docs, bad = _split(recs)
    # What a full decompressor can still get out of the cut file: every complete line in it.
    if suffix == ".gz":
        readable = zlib.decompressobj(31).decompress(packed[: len(packed) * 3 // 4])
    else:
        readable = zstandard.ZstdDecompressor().decompressobj().decompress(packed[: len(packed) * 3 // 4])
    complete = readable.count(b"\n")
    assert complete > 500  # the test is about a real loss
    assert len(docs) == complete
    assert [d.text.split()[2] for d in docs] == [str(i) for i in range(complete)]  # in order, none missing
    assert len(bad) == 1 and bad[0].reason == "truncated_file"
    assert bad[0].location == f"data/a.jsonl{suffix}:{complete + 1}"
    last_nl = readable.rfind(b"\n")
    assert bad[0].num_bytes == len(readable) - last_nl - 1 and f"decompressed byte {last_nl + 1}" in bad[0].detail
    assert str(len(packed) * 3 // 4) in bad[0].detail  # the compressed offset of the cut


def test_intact_compressed_files_are_read_whole_with_the_same_locations(tmp_path):
    payload = _rows(300)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl.gz").write_bytes(gzip.compress(payload[:9000]) + gzip.compress(payload[9000:]))  # 2 members
    zc = zstandard.ZstdCompressor()
    (data / "b.jsonl.zst").write_bytes(zc.compress(payload[:7000]) + zc.compress(payload[7000:]))  # 2 frames
    (data / "c.jsonl").write_bytes(payload.rstrip(b"\n"))  # no newline after the last record
    docs, bad = _split(read_source(_jsonl_spec(tmp_path)))
    assert not bad
    for name in ("a.jsonl.gz", "b.jsonl.zst", "c.jsonl"):
        mine = [d for d in docs if d.path == f"data/{name}"]
        assert len(mine) == 300
        assert [d.id for d in mine] == [make_doc_id("t", f"data/{name}:{i + 1}", d.text) for i, d in enumerate(mine)]


def test_corrupt_bytes_in_the_middle_of_a_gzip_stream_keep_the_records_before(tmp_path):
    packed = bytearray(gzip.compress(_rows(3000), compresslevel=1))
    mid = len(packed) // 2
    packed[mid : mid + 32] = b"\xa5" * 32
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl.gz").write_bytes(bytes(packed))
    docs, bad = _split(read_source(_jsonl_spec(tmp_path)))
    assert len(docs) > 1000  # the first half, or near it
    # Garbage that still inflates to something may make a line or two malformed; the stream break is last.
    assert bad[-1].reason == "unreadable_file" and "corrupt gzip data" in bad[-1].detail
    assert [d.text.split()[2] for d in docs[:1000]] == [str(i) for i in range(1000)]


def test_bounded_lines_never_hold_more_than_the_limit_and_flag_long_lines():
    chunks = [b"short\nabc", b"defghij" * 10, b"klm\nx\n", b"tail"]
    out = list(bounded_lines(iter(chunks), max_bytes=20))
    assert out[0] == (b"short\n", 6)
    head, size = out[1]
    assert size == len(b"abc" + b"defghij" * 10 + b"klm\n") and head.startswith(b"abcdefghij") and size > 20
    assert out[2:] == [(b"x\n", 2), (b"tail", 4)]


def _parquet_with_damaged_group(path: Path, rows_per_group: int = 1000) -> list[str]:
    texts = [f"row {i} " + f"lorem ipsum {i} " * 30 for i in range(3 * rows_per_group)]
    # Small pages (write_batch_size) and no dictionary: the damage hits one page, not the whole group.
    pq.write_table(
        pa.table({"text": texts}),
        path,
        row_group_size=rows_per_group,
        use_dictionary=False,
        write_batch_size=50,
        data_page_size=4096,
    )
    col = pq.ParquetFile(path).metadata.row_group(1).column(0)
    raw = bytearray(path.read_bytes())
    mid = col.data_page_offset + col.total_compressed_size // 2
    raw[mid : mid + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    return texts


def test_parquet_damaged_row_group_keeps_the_other_groups_and_the_rows_before(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    texts = _parquet_with_damaged_group(data / "p.parquet")
    spec = _spec(tmp_path, '[[source]]\nname = "p"\ndomain = "web"\nformat = "parquet"\npath = "data/*.parquet"\n')
    recs = list(read_source(spec))
    docs, bad = _split(recs)
    assert len(bad) == 1 and bad[0].reason == "unreadable_row_group"
    lost_from = int(bad[0].location.rsplit(":", 1)[1])
    assert 1000 < lost_from <= 2000 and "row group 1" in bad[0].detail and "file bytes" in bad[0].detail
    kept = [d.text for d in docs]
    assert kept[:1000] == texts[:1000] and kept[-1000:] == texts[2000:]  # groups 0 and 2 whole
    assert kept[1000:-1000] == texts[1000 : lost_from - 1]  # group 1 up to the damage
    # Row numbers stay the file's own after the damaged group.
    assert [r for r in recs if isinstance(r, Document)][-1].id == make_doc_id("p", "data/p.parquet:3000", texts[-1])


def test_symlink_loop_in_a_code_tree_is_quarantined(tmp_path):
    tree = tmp_path / "repo"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "ok.py").write_text("x = 1\n")
    os.symlink("b.py", tree / "pkg" / "a.py")
    os.symlink("a.py", tree / "pkg" / "b.py")
    os.symlink("loopdir", tree / "loopdir")
    spec = _spec(tmp_path, '[[source]]\nname = "r"\ndomain = "code"\nformat = "code"\npath = "repo"\n')
    recs = list(read_source(spec))
    docs, bad = _split(recs)
    assert [d.path for d in docs] == ["repo/pkg/ok.py"]
    assert sorted((b.location, b.reason) for b in bad) == [
        ("repo/pkg/a.py", "symlink_loop"),
        ("repo/pkg/b.py", "symlink_loop"),
    ]
    stats = input_file_stats(spec)  # the fingerprint does not crash on the loop either
    assert [s[0] for s in stats] == ["repo/pkg/a.py", "repo/pkg/b.py", "repo/pkg/ok.py"]


def test_symlink_loop_matched_by_a_glob_is_quarantined(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.jsonl").write_text(json.dumps({"text": "fine"}) + "\n")
    os.symlink("y.jsonl", data / "x.jsonl")
    os.symlink("x.jsonl", data / "y.jsonl")
    spec = _jsonl_spec(tmp_path, "data/*.jsonl")
    docs, bad = _split(read_source(spec))
    assert [d.text for d in docs] == ["fine"]
    assert Counter(b.reason for b in bad) == Counter(symlink_loop=2)
    assert len(input_file_stats(spec)) == 3


def _plant_outside_links(tmp_path: Path) -> tuple[Path, Path]:
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    secret = secret_dir / "passwd"
    secret.write_text(SECRET + "\n")
    (secret_dir / "leak.jsonl").write_text(json.dumps({"text": SECRET}) + "\n")
    (secret_dir / "sub").mkdir()
    (secret_dir / "sub" / "leak.jsonl").write_text(json.dumps({"text": SECRET}) + "\n")
    data = tmp_path / "data"
    data.mkdir()
    return data, secret_dir


@pytest.mark.parametrize("fmt", ["jsonl", "text", "parquet"])
def test_glob_links_outside_the_root_are_refused_and_never_read(tmp_path, fmt, monkeypatch):
    data, elsewhere = _plant_outside_links(tmp_path)
    ext = {"jsonl": "jsonl", "text": "txt", "parquet": "parquet"}[fmt]
    good = {"text": "an honest document"}
    if fmt == "parquet":
        pq.write_table(pa.table({"text": [good["text"]]}), data / f"good.{ext}")
    elif fmt == "jsonl":
        (data / f"good.{ext}").write_text(json.dumps(good) + "\n")
    else:
        (data / f"good.{ext}").write_text(good["text"])
    (data / "real").mkdir()
    (data / "real" / f"inside.{ext}").write_bytes((data / f"good.{ext}").read_bytes())
    os.symlink(elsewhere / ("leak.jsonl" if fmt == "jsonl" else "passwd"), data / f"leak.{ext}")
    os.symlink(elsewhere / "sub", data / "subdir")  # a folder link: data/subdir/*.ext leaves the root too
    os.symlink(data / "real" / f"inside.{ext}", data / f"alias.{ext}")  # a link inside the root is fine
    spec = _spec(
        tmp_path,
        f'[[source]]\nname = "s"\ndomain = "web"\nformat = "{fmt}"\npath = ["data/*.{ext}", "data/*/*.{ext}"]\n',
    )
    real_open = open

    def guarded_open(file, *args, **kwargs):  # no byte of anything outside the root is read
        assert not str(os.path.realpath(file)).startswith(str(elsewhere)), f"opened {file}"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    recs = list(read_source(spec))
    docs, bad = _split(recs)
    assert sorted(d.path for d in docs) == sorted([f"data/alias.{ext}", f"data/good.{ext}", f"data/real/inside.{ext}"])
    refused = {b.location: b for b in bad}
    leak_locs = {f"data/leak.{ext}"} | ({"data/subdir/leak.jsonl"} if fmt == "jsonl" else set())
    assert set(refused) == leak_locs
    assert {b.reason for b in bad} == {"symlink_outside_root"}
    everything = json.dumps([r.to_row() for r in recs], default=str)
    assert "TOP-SECRET" not in everything  # in no document, excerpt or detail
    assert all(b.excerpt is None for b in bad)


def test_literal_path_and_code_tree_links_out_of_their_root_are_refused(tmp_path):
    _, elsewhere = _plant_outside_links(tmp_path)
    os.symlink(elsewhere / "leak.jsonl", tmp_path / "data" / "named.jsonl")
    spec = _jsonl_spec(tmp_path, "data/named.jsonl")
    assert [p for p, _ in resolve_paths(spec)] == [tmp_path / "data" / "named.jsonl"]
    (rec,) = read_source(spec)
    assert rec.reason == "symlink_outside_root" and rec.location == "data/named.jsonl"
    # A glob over code trees: a tree that is a link out of the glob's root is refused whole.
    (tmp_path / "repos" / "mine").mkdir(parents=True)
    (tmp_path / "repos" / "mine" / "a.py").write_text("a = 1\n")
    (elsewhere / "x.py").write_text(f"SECRET = {SECRET!r}\n")
    os.symlink(elsewhere, tmp_path / "repos" / "theirs")
    code = _spec(tmp_path, '[[source]]\nname = "c"\ndomain = "code"\nformat = "code"\npath = "repos/*"\n')
    recs = list(read_source(code))
    assert [(type(r).__name__, getattr(r, "reason", r.path if isinstance(r, Document) else "")) for r in recs] == [
        ("Document", "repos/mine/a.py"),
        ("QuarantineRecord", "symlink_outside_root"),
    ]
    assert "TOP-SECRET" not in json.dumps([r.to_row() for r in recs], default=str)
    stats = input_file_stats(code)  # the refused tree is fingerprinted by its link, never listed inside
    assert [s[0] for s in stats] == ["repos/mine/a.py", "repos/theirs"]


def test_read_path_reads_exactly_one_entry(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        (data / f"{name}.jsonl").write_text(json.dumps({"text": f"text of {name}"}) + "\n")
    spec = _jsonl_spec(tmp_path, "data/*.jsonl")
    entries = resolve_paths(spec)
    per_entry = [r for path, loc in entries for r in read_path(spec, path, loc)]
    assert [d.text for d in per_entry] == ["text of a", "text of b"]
    assert per_entry == list(read_source(spec))


@pytest.mark.parametrize("fmt", ["jsonl.gz", "jsonl.zst", "parquet"])
def test_readers_hold_a_bounded_amount_whatever_the_file_size(tmp_path, fmt, monkeypatch):
    import tracemalloc

    import ingest.readers

    monkeypatch.setattr(ingest.readers, "_PARQUET_BATCH_BYTES", 2 << 20)  # 2 rows of 1 MB per batch
    data = tmp_path / "data"
    data.mkdir()
    abc = "abcdefghijklmnopqrstuvwxyz"
    texts = [f"doc {i} " + (abc[i % 26 :] + abc[: i % 26]) * ((1 << 20) // 26) for i in range(30)]
    if fmt == "parquet":  # one row group, a page per row: only the reader's batching bounds memory
        pq.write_table(pa.table({"text": texts}), data / "big.parquet", write_batch_size=1, data_page_size=1 << 16)
        spec = _spec(tmp_path, '[[source]]\nname = "p"\ndomain = "web"\nformat = "parquet"\npath = "data/*"\n')
    else:
        payload = b"".join(json.dumps({"text": t}).encode() + b"\n" for t in texts)
        packed = gzip.compress(payload, 1) if fmt == "jsonl.gz" else zstandard.ZstdCompressor().compress(payload)
        (data / f"big.{fmt}").write_bytes(packed)
        del payload, packed
        spec = _jsonl_spec(tmp_path)
    tracemalloc.start()
    try:
        count = sum(isinstance(r, Document) for r in read_source(spec))  # each record dropped once counted
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 30
    assert peak < 14 << 20, f"{peak / 2**20:.1f} MB held for 30 MB of 1 MB documents"


def _guard_reads(monkeypatch, forbidden: Path) -> list[str]:
    """Fail on any `open` (builtins, io, os) of a path that resolves under `forbidden`; return the paths opened."""
    import io

    opened: list[str] = []

    def guarded(real):
        def open_(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                path = os.path.realpath(os.fsdecode(file))
                assert not path.startswith(str(forbidden)), f"opened {file} -> {path}"
                opened.append(path)
            return real(file, *args, **kwargs)

        return open_

    monkeypatch.setattr("builtins.open", guarded(open))
    monkeypatch.setattr(io, "open", guarded(io.open))
    monkeypatch.setattr(os, "open", guarded(os.open))
    return opened


@pytest.mark.parametrize(
    "fmt, pattern, refused_location",
    [
        ("text", "data/etclink/passwd", "data/etclink/passwd"),  # the audit's case: a literal path through the link
        ("jsonl", "data/etclink/leak.jsonl", "data/etclink/leak.jsonl"),
        ("jsonl", "data/etclink/*.jsonl", "data/etclink"),  # a glob: the link is refused whole, never listed
        ("jsonl", "data/etclink/**/*.jsonl", "data/etclink"),
        ("text", "data/etclink/sub/../passwd", "data/etclink/passwd"),  # `..` folds lexically, as written
        ("code", "data/etclink/sub", "data/etclink/sub"),  # a code tree under the link
        ("code", "data/etclink", "data/etclink"),  # the tree is the link: a link below the root `data`, as before
    ],
)
def test_a_symlinked_folder_in_the_written_path_does_not_widen_the_root(
    tmp_path, fmt, pattern, refused_location, monkeypatch
):
    """`data/etclink -> elsewhere` (a folder holding a secret file) in the fixed part of a source path: refused like
    any link out of the root, and no byte, file name or size behind it ends up in a row or a fingerprint."""
    data, elsewhere = _plant_outside_links(tmp_path)
    (elsewhere / "sub" / "secret.py").write_text(f"SECRET = {SECRET!r}\n")
    (data / "etclink").symlink_to(elsewhere, target_is_directory=True)
    spec = _spec(tmp_path, f'[[source]]\nname = "s"\ndomain = "web"\nformat = "{fmt}"\npath = "{pattern}"\n')
    assert [loc for _, loc in resolve_paths(spec)] == [refused_location]
    stats = input_file_stats(spec)  # the link's own stat (a link is small), never the target's
    assert [s[0] for s in stats] == [refused_location] and stats[0][1] == os.lstat(data / "etclink").st_size
    opened = _guard_reads(monkeypatch, elsewhere)
    recs = list(read_source(spec))
    assert [(type(r).__name__, r.location, r.reason) for r in recs] == [
        ("QuarantineRecord", refused_location, "symlink_outside_root")
    ]
    link_in_root = pattern != "data/etclink"  # else the tree itself is the link, below its root `data`
    why = "data/etclink is a symlink in the source's root" if link_in_root else f"outside the root {data}"
    assert why in recs[0].detail and recs[0].excerpt is None
    everything = json.dumps([r.to_row() for r in recs], default=str)
    assert "TOP-SECRET" not in everything and "leak.jsonl" not in everything.replace(pattern, "")
    assert not opened  # not one file was opened, inside or outside


def test_a_link_higher_in_the_written_path_and_in_an_absolute_path_is_refused_too(tmp_path, monkeypatch):
    data, elsewhere = _plant_outside_links(tmp_path)
    (tmp_path / "mnt").symlink_to(elsewhere, target_is_directory=True)  # `mnt/sub/leak.jsonl` is elsewhere's
    for pattern in ("mnt/sub/*.jsonl", f"{tmp_path}/mnt/sub/leak.jsonl"):
        spec = _jsonl_spec(tmp_path, pattern)
        _guard_reads(monkeypatch, elsewhere)
        (rec,) = read_source(spec)
        assert rec.reason == "symlink_outside_root" and "mnt is a symlink" in rec.detail, rec
        monkeypatch.undo()


def test_the_root_is_the_path_as_written_even_when_a_link_stays_inside(tmp_path):
    """Documented: a link in the written part is refused wherever it points (write the real path); the same
    files through the real path are read, and a link *below* the root that stays inside it still is."""
    data = tmp_path / "data"
    (data / "v2").mkdir(parents=True)
    (data / "v2" / "a.jsonl").write_text(json.dumps({"text": "version two"}) + "\n")
    (data / "current").symlink_to("v2", target_is_directory=True)
    (rec,) = read_source(_jsonl_spec(tmp_path, "data/current/*.jsonl"))
    assert rec.reason == "symlink_outside_root" and rec.location == "data/current"
    assert [d.text for d in read_source(_jsonl_spec(tmp_path, "data/v2/*.jsonl"))] == ["version two"]
    assert [d.path for d in read_source(_jsonl_spec(tmp_path, "data/*/*.jsonl"))] == [
        "data/current/a.jsonl",
        "data/v2/a.jsonl",
    ]
