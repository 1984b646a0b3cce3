"""Readers turn every input record into a Document or a QuarantineRecord with a reason."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from ingest.readers import read_source
from ingest.sources import SourcesError, load_sources
from ingest.trees import detect_license
from schemas import Document, QuarantineRecord


def _write_sources(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "sources.toml"
    p.write_text(body)
    return p


def _read_all(sources: Path):
    out = []
    for spec in load_sources(sources):
        out.extend(read_source(spec))
    return out


def _reasons(records) -> Counter:
    return Counter(r.reason for r in records if isinstance(r, QuarantineRecord))


def test_jsonl_bad_records_are_quarantined_with_reasons(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = [
        json.dumps({"text": "A good document about cats."}).encode(),
        b'{"text": "unterminated',
        b'\xff\xfe{"text": "bad utf8 \xff"}',
        json.dumps({"text": "has a NUL \x00 byte"}).encode(),
        json.dumps({"text": "   "}).encode(),
        json.dumps({"body": "no text field"}).encode(),
        json.dumps({"text": 42}).encode(),
        json.dumps(["not", "an", "object"]).encode(),
        b"",  # blank line: not a record
        json.dumps({"text": "Another fine document."}).encode(),
    ]
    (data / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "t"
domain = "web"
format = "jsonl"
path = "data/*.jsonl"
""",
        )
    )
    docs = [r for r in recs if isinstance(r, Document)]
    assert [d.text for d in docs] == ["A good document about cats.", "Another fine document."]
    assert _reasons(recs) == Counter(
        malformed_json=1,
        invalid_utf8=1,
        nul_bytes=1,
        empty_text=1,
        missing_text_field=1,
        text_not_string=1,
        not_an_object=1,
    )
    assert len(recs) == 9  # every non-blank line is accounted for exactly once
    bad = next(r for r in recs if isinstance(r, QuarantineRecord) and r.reason == "malformed_json")
    assert bad.location == "data/a.jsonl:2" and "unterminated" in bad.excerpt


def test_gigantic_single_line_is_quarantined_without_reading_it_whole(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    big = b'{"text": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    (data / "big.jsonl").write_bytes(big + b"\n" + json.dumps({"text": "small one"}).encode() + b"\n")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "t"
domain = "web"
format = "jsonl"
path = "data/big.jsonl"
max_doc_bytes = 1048576
""",
        )
    )
    assert _reasons(recs) == Counter(too_large=1)
    q = recs[0]
    assert q.num_bytes == len(big) + 1 and len(q.excerpt) <= 200
    assert isinstance(recs[1], Document) and recs[1].text == "small one"


def test_compressed_jsonl_and_joined_text_fields(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"q": f"question {i}", "a": f"answer {i}", "link": f"http://x/{i}"} for i in range(3)]
    payload = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    (data / "a.jsonl.gz").write_bytes(gzip.compress(payload))
    (data / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload))
    (data / "c.jsonl.gz").write_bytes(b"not gzip at all")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "qa"
domain = "stem"
format = "jsonl"
path = "data/*.jsonl.*"
text_field = ["q", "a"]
url_field = "link"
license = "MIT"
""",
        )
    )
    docs = [r for r in recs if isinstance(r, Document)]
    assert len(docs) == 6
    assert docs[0].text == "question 0\n\nanswer 0" and docs[0].url == "http://x/0" and docs[0].license == "MIT"
    assert _reasons(recs) == Counter(unreadable_file=1)
    assert len({d.id for d in docs}) == 6  # same text in two files keeps two ids


def test_parquet_reader_streams_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(pa.table({"content": ["one", None, "three"], "n": [1, 2, 3]}), data / "p.parquet")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "pq"
domain = "web"
format = "parquet"
path = "data/*.parquet"
text_field = "content"
metadata_fields = ["n"]
""",
        )
    )
    assert [r.text for r in recs if isinstance(r, Document)] == ["one", "three"]
    assert recs[2].metadata == {"n": 3}
    assert _reasons(recs) == Counter(missing_text_field=1)


def test_code_tree_languages_license_binary_and_symlinks(tmp_path):
    tree = tmp_path / "repo"
    (tree / "src").mkdir(parents=True)
    (tree / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, to any person ...")
    (tree / "src" / "main.py").write_text("def main():\n    return 1\n")
    (tree / "src" / "lib.rs").write_text("fn main() {}\n")
    (tree / "src" / "blob.c").write_bytes(b"\x7fELF\x00\x00\x01binary")
    (tree / "src" / "latin1.py").write_bytes(b"# caf\xe9\n")
    (tree / "notes.bin").write_bytes(b"\x00\x01")  # unknown extension: not a code record
    outside = tmp_path / "secret.py"
    outside.write_text("API_KEY = 'outside the tree'\n")
    os.symlink(outside, tree / "src" / "escape.py")
    os.symlink(tmp_path, tree / "up")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "repo"
domain = "code"
format = "code"
path = "repo"
""",
        )
    )
    docs = {r.path: r for r in recs if isinstance(r, Document)}
    assert set(docs) == {"repo/src/main.py", "repo/src/lib.rs"}
    assert docs["repo/src/main.py"].metadata["language"] == "Python"
    assert docs["repo/src/lib.rs"].metadata["language"] == "Rust"
    assert docs["repo/src/main.py"].license == "MIT"
    assert _reasons(recs) == Counter(binary_file=1, invalid_utf8=1, symlink_outside_tree=2)
    assert not any("outside the tree" in getattr(r, "text", "") for r in recs)


@pytest.mark.parametrize(
    "text, spdx",
    [
        ("Apache License\nVersion 2.0, January 2004", "Apache-2.0"),
        ("Redistribution and use in source and binary forms ... Neither the name of", "BSD-3-Clause"),
        ("This is free and unencumbered software released into the public domain.", "Unlicense"),
        ("All rights reserved. Do not copy.", None),
    ],
)
def test_detect_license(text, spdx):
    assert detect_license(text) == spdx


def test_license_detection_on_real_license_files(real_data):
    """The licence files of installed distributions, labelled by their own `License-Expression` (PEP 639)."""
    from ingest.trees import LICENSE_PATTERNS

    known = {spdx for spdx, _ in LICENSE_PATTERNS}
    rows = [(path, spdx, text) for path, spdx, text in real_data.licences if spdx in known]
    missed = [(path, spdx, detect_license(text)) for path, spdx, text in rows if detect_license(text) != spdx]
    assert len(rows) >= 50 and len({spdx for _, spdx, _ in rows}) >= 5, rows
    # Measured 74 of 76 recognised; the two misses are real: jsonpointer's BSD-3-Clause words its third clause
    # without "Neither the name" (read as BSD-2-Clause), and pyarrow's LICENSE.txt appends bundled code's
    # licences, Python's among them (PSF-2.0 is tried first). Left out: ISC, MIT-0 and MIT-CMU (no template).
    assert len(missed) <= 3, missed


@pytest.mark.parametrize(
    "body, message",
    [
        ("[[source]]\nname='a'\ndomain='web'\nformat='jsonl'\n", "missing required key 'path'"),
        ("[[source]]\nname='a'\ndomain='poetry'\nformat='jsonl'\npath='x'\n", "'domain' must be one of"),
        ("[[source]]\nname='a'\ndomain='web'\nformat='csv'\npath='x'\n", "'format' must be one of"),
        ("[[source]]\nname='a'\ndomain='web'\nformat='text'\npath='x'\ncolour='red'\n", "unknown key"),
        ("[[source]]\nname='A B'\ndomain='web'\nformat='text'\npath='x'\n", "'name' must match"),
        ("this is = = not toml", "not valid TOML"),
        ("title = 'no sources'", r"\[\[source\]\]"),
        ("[[source]]\nname='a'\ndomain='web'\nformat='text'\npath='x'\n" * 2, "unique"),
    ],
)
def test_wrong_sources_file_gives_clear_error(tmp_path, body, message):
    with pytest.raises(SourcesError, match=message):
        load_sources(_write_sources(tmp_path, body))


def test_missing_sources_file(tmp_path):
    with pytest.raises(SourcesError, match="does not exist"):
        load_sources(tmp_path / "nope.toml")


def test_embedded_default_sources_cover_every_domain():
    from core.paths import REPO_ROOT

    specs = load_sources(REPO_ROOT / "configs" / "sources" / "default.toml")
    assert {s.domain for s in specs} == {"web", "stem", "code", "books"}
    assert {"html", "docstrings"} <= {s.format for s in specs}
    languages = set()
    for spec in specs:
        if spec.name in ("python-cjk-samples", "idle-help-page"):
            continue  # only where CPython ships its test suite and IDLE (some distributions split them off)
        docs = [r for r in read_source(spec, limit=20) if isinstance(r, Document)]
        assert docs, f"default source {spec.name} produced no documents"
        languages |= {d.metadata["language"] for d in docs if spec.domain == "code"}
    assert languages == {"Python", "C"}  # (Arrow's C++ headers are `.h`: C by extension)
    code = next(s for s in specs if s.domain == "code")
    doc = next(r for r in read_source(code, limit=5) if isinstance(r, Document))
    assert doc.license == "PSF-2.0" and doc.metadata["language"] == "Python"


@pytest.mark.parametrize(
    "text, body",
    [
        (
            "Metadata-Version: 2.1\nName: pkg\nSummary: a thing\n  continued\n\nThe real description.\n",
            "The real description.\n",
        ),
        ("---\ntitle: Post\ntags: [a]\n---\nHello there.\n", "Hello there.\n"),
        ("No header here.\n\nSecond paragraph.", "No header here.\n\nSecond paragraph."),
    ],
)
def test_strip_front_matter(text, body):
    from ingest.readers import strip_front_matter

    assert strip_front_matter(text) == body


def test_text_source_with_only_front_matter_is_quarantined_as_empty(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\n\n")
    (data / "README.md").write_text("---\ntitle: x\n---\nBody text of the readme.\n")
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "t"
domain = "web"
format = "text"
path = "data/*"
strip_front_matter = true
""",
        )
    )
    assert _reasons(recs) == Counter(empty_text=1)
    assert [r.text for r in recs if isinstance(r, Document)] == ["Body text of the readme.\n"]


def test_unreadable_directory_in_a_code_tree_is_quarantined(tmp_path, monkeypatch):
    tree = tmp_path / "repo"
    (tree / "locked").mkdir(parents=True)
    (tree / "ok.py").write_text("x = 1\n")
    (tree / "locked" / "hidden.py").write_text("y = 2\n")
    real_scandir = os.scandir

    def scandir(path):  # as root, permissions cannot make a directory unreadable: fail it here instead
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    recs = _read_all(
        _write_sources(tmp_path, '[[source]]\nname = "r"\ndomain = "code"\nformat = "code"\npath = "repo"\n')
    )
    assert _reasons(recs) == Counter(unreadable_file=1)
    bad = next(r for r in recs if isinstance(r, QuarantineRecord))
    assert bad.location == "repo/locked" and "Permission denied" in bad.detail
    assert [r.path for r in recs if isinstance(r, Document)] == ["repo/ok.py"]


def test_input_file_stats_lists_exactly_what_the_reader_opens(tmp_path):
    from ingest.readers import input_file_stats

    tree = tmp_path / "repo"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "a.py").write_text("a = 1\n")
    (tree / "pkg" / "notes.bin").write_bytes(b"\x00")
    (tree / "docs").mkdir()
    (tree / "docs" / "b.py").write_text("b = 2\n")
    (spec,) = load_sources(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "r"
domain = "code"
format = "code"
path = "repo"
include = ["pkg/**/*.py"]
""",
        )
    )
    stats = input_file_stats(spec)
    assert [s[0] for s in stats] == ["repo/pkg/a.py"]
    (tree / "pkg" / "a.py").write_text("a = 22\n")
    assert input_file_stats(spec) != stats  # an edited input changes the ingest fingerprint


def test_odd_json_lines_are_quarantined_one_by_one_and_the_rest_of_the_file_is_read(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = [
        json.dumps({"text": "first"}).encode(),
        b'{"text": "big number", "n": ' + b"9" * 5000 + b"}",  # ValueError: int over 4300 digits
        b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deep nesting
        b'{"text": "lone surrogate \\ud800 here"}',
        b'{"text": "fine text", "url": "http://x/\\udc00"}',
        json.dumps({"text": "last"}).encode(),
    ]
    (data / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (data / "b.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00garbage" * 10)
    recs = _read_all(
        _write_sources(
            tmp_path, '[[source]]\nname = "t"\ndomain = "web"\nformat = "jsonl"\npath = "data/*"\nurl_field = "url"\n'
        )
    )
    assert [r.text for r in recs if isinstance(r, Document)] == ["first", "last"]
    assert _reasons(recs) == Counter(malformed_json=2, invalid_utf8=2, unreadable_file=1)
    assert [r.location for r in recs if isinstance(r, QuarantineRecord)][:4] == [
        "data/a.jsonl:2",
        "data/a.jsonl:3",
        "data/a.jsonl:4",
        "data/a.jsonl:5",
    ]


def test_same_file_name_under_two_patterns_keeps_distinct_locations_and_ids(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.jsonl").write_text(json.dumps({"text": "identical text"}) + "\n")
    recs = _read_all(
        _write_sources(
            tmp_path, '[[source]]\nname = "t"\ndomain = "web"\nformat = "jsonl"\npath = ["a/*.jsonl", "b/*.jsonl"]\n'
        )
    )
    assert sorted(r.path for r in recs) == ["a/x.jsonl", "b/x.jsonl"]
    assert len({r.id for r in recs}) == 2


def test_parquet_metadata_of_any_type_is_stored_as_json(tmp_path):
    import datetime

    from core.io import write_table
    from schemas import DOCUMENT_SCHEMA, to_table

    data = tmp_path / "data"
    data.mkdir()
    when = datetime.datetime(2024, 5, 1, 12, 0)
    pq.write_table(pa.table({"text": ["hello there"], "when": [when], "blob": [b"\x00\x01"]}), data / "p.parquet")
    recs = _read_all(
        _write_sources(
            tmp_path,
            '[[source]]\nname = "t"\ndomain = "web"\nformat = "parquet"\npath = "data/*.parquet"\nmetadata_fields = ["when", "blob"]\n',
        )
    )
    table = to_table([recs[0].to_row()], DOCUMENT_SCHEMA)
    write_table(tmp_path / "out.parquet", table, DOCUMENT_SCHEMA)
    assert json.loads(table.column("metadata")[0].as_py())["when"].startswith("2024-05-01")


# --- issue 23: sources that match nothing, bytes that are not JSON Lines, inputs with nothing in them -------------


def _one_source(tmp_path: Path, fmt: str, path: str, extra: str = "") -> Path:
    return _write_sources(
        tmp_path, f'[[source]]\nname = "s"\ndomain = "web"\nformat = "{fmt}"\npath = {path}\n{extra}'
    )


@pytest.mark.parametrize(
    "fmt, path, unmatched",
    [
        ("jsonl", '"data/*.json"', "data/*.json"),  # a glob
        ("jsonl", '"data/named.jsonl"', "data/named.jsonl"),  # a literal path
        ("jsonl", '["data/a.jsonl", "data/typo/*.jsonl"]', "data/typo/*.jsonl"),  # one path of two: named
        ("code", '"data/a.jsonl"', "data/a.jsonl"),  # a file where a tree format wants a folder
        ("html", '"empty_folder"', "empty_folder"),  # a folder with no page in it
    ],
)
def test_a_source_path_that_matches_nothing_is_an_error_naming_file_source_and_path(tmp_path, fmt, path, unmatched):
    from ingest.sources import check_sources_match
    from ingest.step import IngestStep

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text(json.dumps({"text": "a document"}) + "\n")
    (tmp_path / "empty_folder").mkdir()
    sources = _one_source(tmp_path, fmt, path)
    specs = load_sources(sources)
    with pytest.raises(SourcesError) as err:
        check_sources_match(specs)
    message = str(err.value)
    assert f"{sources}: [[source]] #1 (s): path {unmatched!r} matches no" in message and "optional = true" in message
    assert "\n" not in message
    with pytest.raises(SourcesError, match="matches no"):  # every caller of the ingest step gets the same error
        IngestStep(specs).units()


def test_an_optional_source_that_matches_nothing_is_a_warning_and_listed(tmp_path, caplog):
    from ingest.sources import check_sources_match
    from ingest.step import IngestStep

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text(json.dumps({"text": "a document"}) + "\n")
    sources = _write_sources(
        tmp_path,
        """
[[source]]
name = "here"
domain = "web"
format = "jsonl"
path = "data/*.jsonl"

[[source]]
name = "maybe"
domain = "web"
format = "jsonl"
path = "later/*.jsonl"
optional = true
""",
    )
    specs = load_sources(sources)
    assert [s.optional for s in specs] == [False, True]
    assert check_sources_match(specs) == ["maybe"]
    assert "optional source 'maybe'" in caplog.text and "later/*.jsonl" in caplog.text
    step = IngestStep(specs)
    assert len(step.units()) == 1 and step.sources_without_files == ["maybe"]
    # `optional` does not change what is read: flipping it reruns no ingest unit.
    flipped = load_sources(_write_sources(tmp_path, sources.read_text().replace("optional = true", "")))
    assert flipped[1].to_config() == specs[1].to_config()


def test_optional_must_be_a_boolean(tmp_path):
    with pytest.raises(SourcesError, match=r"\(s\): 'optional' must be true or false, got 'yes'"):
        load_sources(_one_source(tmp_path, "jsonl", '"x"', 'optional = "yes"\n'))


def test_raw_nul_bytes_in_a_json_line_are_nul_bytes_and_the_other_lines_are_kept(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(
        json.dumps({"text": "first"}).encode()
        + b"\n"
        + b'{"text": "a raw \x00 NUL and \x00 another"}\n'  # not the escape \\u0000: the byte itself
        + json.dumps({"text": "third"}).encode()
        + b"\n"
    )
    recs = _read_all(_one_source(tmp_path, "jsonl", '"data/*.jsonl"'))
    assert [d.text for d in recs if isinstance(d, Document)] == ["first", "third"]
    (bad,) = [r for r in recs if isinstance(r, QuarantineRecord)]
    assert (bad.location, bad.reason, bad.detail) == ("data/a.jsonl:2", "nul_bytes", "2 raw NUL byte(s)")


def test_a_binary_file_in_a_json_lines_source_is_one_binary_file_row(tmp_path):
    """A real shared library (611 newlines in its first 512 KB: 611 rows before) as a .jsonl file, plain and
    gzipped, and UTF-16 JSON Lines: one `binary_file` row each, beside a good file that is read whole."""
    import numpy._core._multiarray_umath as compiled

    data = tmp_path / "data"
    data.mkdir()
    elf = Path(compiled.__file__).read_bytes()[: 512 * 1024]
    assert elf.count(b"\n") > 100
    (data / "lib.jsonl").write_bytes(elf)
    (data / "lib2.jsonl.gz").write_bytes(gzip.compress(elf))
    (data / "utf16.jsonl").write_bytes((json.dumps({"text": "wide"}) + "\n").encode("utf-16-le") * 50)
    (data / "ok.jsonl").write_text(json.dumps({"text": "a good document"}) + "\n")
    recs = _read_all(_one_source(tmp_path, "jsonl", '"data/*.jsonl*"'))
    assert [d.text for d in recs if isinstance(d, Document)] == ["a good document"]
    bad = {r.location: r for r in recs if isinstance(r, QuarantineRecord)}
    assert sorted(bad) == ["data/lib.jsonl", "data/lib2.jsonl.gz", "data/utf16.jsonl"]
    assert {r.reason for r in bad.values()} == {"binary_file"}
    assert "not UTF-8" in bad["data/lib.jsonl"].detail and bad["data/lib.jsonl"].excerpt[1:4] == "ELF"
    assert "% NUL bytes" in bad["data/utf16.jsonl"].detail
    assert bad["data/lib.jsonl"].num_bytes == len(elf)


def test_an_empty_file_or_folder_leaves_a_quarantine_row(tmp_path):
    data = tmp_path / "data"
    (data / "tree" / "docs").mkdir(parents=True)
    (data / "tree" / "docs" / "notes.bin").write_bytes(b"no known extension")
    (data / "empty.jsonl").write_bytes(b"")
    (data / "blank.jsonl").write_bytes(b"\n\n  \n")
    (data / "ok.jsonl").write_text(json.dumps({"text": "kept"}) + "\n")
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), data / "none.parquet")
    (data / "hollow").mkdir()
    recs = _read_all(
        _write_sources(
            tmp_path,
            """
[[source]]
name = "j"
domain = "web"
format = "jsonl"
path = "data/*.jsonl"

[[source]]
name = "p"
domain = "web"
format = "parquet"
path = "data/*.parquet"

[[source]]
name = "c"
domain = "code"
format = "code"
path = ["data/hollow", "data/tree"]
""",
        )
    )
    assert [d.text for d in recs if isinstance(d, Document)] == ["kept"]
    rows = sorted((r.location, r.reason, r.num_bytes) for r in recs if isinstance(r, QuarantineRecord))
    assert rows == [
        ("data/blank.jsonl", "empty_file", 5),
        ("data/empty.jsonl", "empty_file", 0),
        ("data/hollow", "empty_folder", 0),
        ("data/none.parquet", "empty_file", (data / "none.parquet").stat().st_size),
        ("data/tree", "empty_folder", 0),
    ]
