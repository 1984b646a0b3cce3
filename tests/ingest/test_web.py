"""Web pages from WARC/WET archives and HTML files: main text without boilerplate, URL and page signals, skipped
and quarantined records, damaged archives, determinism, and a stage run on a `format = "warc"` source.

Every page here is written for this test, except the IDLE help page, which ships with CPython (read in place).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from ingest.readers import Skipped, read_source
from ingest.sources import load_sources, resolve_paths
from ingest.step import IngestStep
from pipeline.step import run_unit
from schemas import Document, QuarantineRecord, make_doc_id
from tests.conftest import REPO_ROOT
from tests.flows.corpus_fixture import PARAGRAPHS

NAV = ["Home page", "About our team", "Shop for gifts"]
FOOTER = "Copyright 2024 The Soup Company. All rights reserved."


def page(title: str, paragraphs: list[str], lang: str = "en", charset_meta: str | None = "utf-8") -> str:
    """A page with navigation, a sidebar and a footer around an article."""
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    nav = " | ".join(f'<a href="/{i}">{t}</a>' for i, t in enumerate(NAV))
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head>{meta}<title>{title}</title></head><body>\n'
        f'<header><nav>{nav}</nav></header>\n<div class="sidebar"><ul><li><a href="/x">Related: more soup</a>'
        f"</li></ul></div>\n<main><article><h1>{title}</h1>\n{body}\n</article></main>\n"
        f'<footer><p>{FOOTER} <a href="/privacy">Privacy</a></p></footer></body></html>'
    )


def response(
    w: WARCWriter,
    url: str,
    payload: bytes,
    content_type: str | None = "text/html; charset=utf-8",
    status: str = "200 OK",
) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=http))


def request(w: WARCWriter, url: str) -> None:
    req = b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"
    w.write_record(w.create_warc_record(url, "request", payload=io.BytesIO(req)))


def sources(tmp_path: Path, fmt: str, path: str = "data/*", extra: str = "") -> Path:
    p = tmp_path / "sources.toml"
    p.write_text(f'[[source]]\nname = "w"\ndomain = "web"\nformat = "{fmt}"\npath = "{path}"\n{extra}')
    return p


def read(src: Path) -> list:
    (spec,) = load_sources(src)
    return list(read_source(spec))


def split(recs: list) -> tuple[list[Document], list[QuarantineRecord], list[Skipped]]:
    return (
        [r for r in recs if isinstance(r, Document)],
        [r for r in recs if isinstance(r, QuarantineRecord)],
        [r for r in recs if isinstance(r, Skipped)],
    )


def small_archive(path: Path, gz: bool = True) -> None:
    """warcinfo, request, HTML response, PNG response, redirect, HTML response."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        w.write_record(w.create_warcinfo_record(path.name, {"software": "corpusforge-test"}))
        request(w, "http://example.org/soup")
        response(w, "http://example.org/soup", page("Vegetable soup", PARAGRAPHS[1:3]).encode())
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
        response(w, "http://example.org/logo.png", png, content_type="image/png")
        response(w, "http://example.org/old", b"", content_type=None, status="301 Moved Permanently")
        response(w, "http://example.org/town", page("The river town", PARAGRAPHS[:1], lang="en-GB").encode())


# --- what a page becomes ---------------------------------------------------------------------------------


def test_warc_pages_keep_the_article_and_drop_navigation_and_footer(tmp_path):
    small_archive(tmp_path / "data" / "crawl.warc.gz")
    docs, bad, skipped = split(read(sources(tmp_path, "warc")))
    assert [d.url for d in docs] == ["http://example.org/soup", "http://example.org/town"]
    soup = docs[0]
    for para in PARAGRAPHS[1:3]:
        assert para in soup.text
    for boiler in [*NAV, FOOTER, "Related: more soup", "Privacy"]:
        assert boiler not in soup.text, boiler
    assert soup.path == "data/crawl.warc.gz" and soup.source == "w" and soup.domain == "web"
    m = soup.metadata
    assert m["warc_type"] == "response" and m["warc_record_id"].startswith("<urn:uuid:") and m["warc_date"]
    assert m["http_status"] == 200 and m["content_type"] == "text/html" and m["charset"] == "utf-8"
    assert m["html_lang"] == "en" and m["title"] == "Vegetable soup"
    assert m["num_links"] == len(NAV) + 2 and m["num_paragraphs"] == 3  # 2 in the article, 1 in the footer
    assert m["text_chars"] == len(soup.text) and 0 < m["text_html_ratio"] < 1
    assert m["text_html_ratio"] == round(len(soup.text) / m["html_chars"], 4)
    assert docs[1].metadata["html_lang"] == "en-GB"
    # Locations count every record of the file; what is no page is skipped (counted), a PNG is quarantined.
    assert [(s.location, s.reason) for s in skipped] == [
        ("data/crawl.warc.gz:1", "warc_warcinfo"),
        ("data/crawl.warc.gz:2", "warc_request"),
        ("data/crawl.warc.gz:5", "http_status_not_2xx"),
    ]
    (png,) = bad
    assert (png.location, png.reason, png.detail) == ("data/crawl.warc.gz:4", "not_html", "content type image/png")
    assert png.excerpt.startswith("\\x89PNG") and png.num_bytes > 10_000
    assert [d.id for d in docs] == [make_doc_id("w", f"data/crawl.warc.gz:{n}", d.text) for n, d in zip((3, 6), docs)]


def test_wet_conversion_records_are_kept_as_text(tmp_path):
    path = tmp_path / "data" / "crawl.warc.wet.gz"
    path.parent.mkdir()
    texts = [PARAGRAPHS[2], PARAGRAPHS[3]]
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        w.write_record(w.create_warcinfo_record(path.name, {"software": "corpusforge-test"}))
        for i, text in enumerate(texts):
            rec = w.create_warc_record(
                f"http://example.org/{i}",
                "conversion",
                payload=io.BytesIO(text.encode()),
                warc_content_type="text/plain",
                warc_headers_dict={"WARC-Refers-To": f"<urn:uuid:{i}>", "WARC-Identified-Content-Language": "eng"},
            )
            w.write_record(rec)
        w.write_record(
            w.create_warc_record(
                "http://example.org/bad",
                "conversion",
                payload=io.BytesIO(b"caf\xe9 au lait"),
                warc_content_type="text/plain",
            )
        )
    docs, bad, skipped = split(read(sources(tmp_path, "warc")))
    assert [d.text for d in docs] == texts
    assert docs[0].metadata["warc_type"] == "conversion" and docs[0].metadata["warc_refers_to"] == "<urn:uuid:0>"
    assert docs[1].metadata["warc_language"] == "eng" and docs[1].url == "http://example.org/1"
    assert "html_lang" not in docs[0].metadata  # no HTML, no page signals
    assert [(b.location, b.reason) for b in bad] == [("data/crawl.warc.wet.gz:4", "invalid_utf8")]
    assert [s.reason for s in skipped] == ["warc_warcinfo"]


def test_bad_pages_are_quarantined_with_their_reason(tmp_path):
    path = tmp_path / "data" / "mixed.warc"
    path.parent.mkdir()
    town = page("Été au village", [PARAGRAPHS[0].replace("autumn", "été")], lang="fr", charset_meta=None)
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=False)
        response(w, "http://e.org/cp1252", town.encode("cp1252"), content_type="text/html; charset=windows-1252")
        response(
            w,
            "http://e.org/latin1-meta",
            town.replace("<head>", '<head><meta charset="iso-8859-1">').encode("cp1252"),
            content_type="text/html",
        )
        response(w, "http://e.org/undeclared", town.encode("cp1252"), content_type="text/html")
        response(w, "http://e.org/klingon", town.encode(), content_type="text/html; charset=x-klingon")
        response(w, "http://e.org/nul", b"<html><body><p>" + b"\x00" * 50 + b"</p></body></html>")
        response(
            w,
            "http://e.org/noprose",
            b"<html><head><title>Gallery</title></head><body>"
            b"<script>var x = 1;</script><img src='a.png'></body></html>",
        )
        response(w, "http://e.org/pdf", b"%PDF-1.4 binary", content_type="application/pdf")
        response(w, "http://e.org/huge", page("Huge", [PARAGRAPHS[0] * 40]).encode())
        response(w, "http://e.org/untyped", page("No type", PARAGRAPHS[3:4]).encode(), content_type=None)
        response(w, "http://e.org/untyped-bin", b"\x01\x02\x03 not a page", content_type=None)
        dns = b"20240101000000\ne.org. 300 IN A 192.0.2.1\n"  # what Heritrix archives for each host
        dns_record = w.create_warc_record("dns:e.org", "response", io.BytesIO(dns), warc_content_type="text/dns")
        w.write_record(dns_record)
        korean = (Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings" / "iso2022_kr.txt").read_bytes()
        response(
            w,
            "http://e.org/iso-2022-kr",
            b"<html><body><p>" + korean + b"</p></body></html>",
            content_type="text/html; charset=iso-2022-kr",
        )  # a 7-bit encoding that browsers refuse to decode
    recs = read(sources(tmp_path, "warc", extra="max_doc_bytes = 20000\n"))
    docs, bad, skipped = split(recs)
    assert len(recs) == 12  # every record comes out once
    assert skipped == [Skipped("w", "data/mixed.warc:11", "warc_response_not_http")]
    assert [d.url.rsplit("/", 1)[1] for d in docs] == ["cp1252", "latin1-meta", "undeclared", "klingon", "untyped"]
    assert "été" in docs[0].text and docs[0].metadata["charset"] == "cp1252" and docs[0].metadata["html_lang"] == "fr"
    assert docs[0].metadata["charset_source"] == "http" and docs[0].metadata["charset_declared"] == "windows-1252"
    assert docs[1].text == docs[0].text  # a latin-1 label means windows-1252 on the web
    # Undeclared windows-1252 (quarantined as invalid_utf8 before): detected; an unknown label: skipped, as browsers do.
    assert docs[2].text == docs[0].text and docs[2].metadata["charset_source"] == "detected"
    assert docs[3].metadata["charset_source"] == "utf8" and docs[3].metadata["charset_declared"] == "x-klingon"
    assert docs[4].metadata["content_type"] is None and PARAGRAPHS[3] in docs[4].text
    got = {b.location.rsplit(":", 1)[1]: (b.reason, b.detail or "") for b in bad}
    assert {k: v[0] for k, v in got.items()} == {
        "5": "binary_payload",
        "6": "empty_extraction",
        "7": "not_html",
        "8": "too_large",
        "10": "not_html",
        "12": "invalid_charset",
    }
    assert "max_doc_bytes=20000" in got["8"][1] and "iso-2022-kr" in got["12"][1]


def test_the_same_page_gives_the_same_text_every_time_in_an_archive(tmp_path):
    # trafilatura's deduplicate=True removes paragraphs it has seen 3 times in its process-wide cache; the reader
    # empties it per page, so a page's text does not depend on the pages read before it.
    path = tmp_path / "data" / "repeat.warc.gz"
    path.parent.mkdir()
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for i in range(5):
            response(w, f"http://e.org/{i}", page("Soup", PARAGRAPHS[1:4]).encode())
    docs, bad, _ = split(read(sources(tmp_path, "warc")))
    assert not bad and len(docs) == 5
    assert len({d.text for d in docs}) == 1 and all(p in docs[4].text for p in PARAGRAPHS[1:4])
    assert len({d.id for d in docs}) == 5  # same text, five places: five ids (exact dedup decides later)


# --- damaged archives ----------------------------------------------------------------------------------


def _members(n: int) -> tuple[bytes, list[int], list[int]]:
    """A .warc.gz of n page records (one gzip member each): bytes, compressed and decompressed record starts."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    starts = []
    for i in range(n):
        starts.append(buf.tell())
        text = f"Page number {i}. " + PARAGRAPHS[i % 4]
        response(w, f"http://e.org/{i}", page(f"Page {i}", [text, PARAGRAPHS[(i + 1) % 4]]).encode())
    data = buf.getvalue()
    ends = [*starts[1:], len(data)]
    sizes = [len(gzip.decompress(data[s:e])) for s, e in zip(starts, ends)]
    return data, starts, [sum(sizes[:i]) for i in range(n)]


def test_truncated_warc_gz_keeps_every_record_before_the_cut(tmp_path):
    data, starts, decoded = _members(40)
    cut = starts[30] + (starts[31] - starts[30]) // 2  # an interrupted download, inside record 31
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cut.warc.gz").write_bytes(data[:cut])
    docs, bad, _ = split(read(sources(tmp_path, "warc")))
    assert [d.url for d in docs] == [f"http://e.org/{i}" for i in range(30)]  # in order, none missing
    (lost,) = bad
    assert (lost.location, lost.reason) == ("data/cut.warc.gz:31", "truncated_file")
    assert f"the file ends at byte {cut}" in lost.detail and "30 record(s) before it were read" in lost.detail
    assert f"from decompressed byte {decoded[30]} is lost" in lost.detail
    assert 0 < lost.num_bytes < decoded[31] - decoded[30]  # what was decoded of record 31


def test_uncompressed_warc_cut_inside_a_record_and_garbage_after_records(tmp_path):
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    for i in range(3):
        response(w, f"http://e.org/{i}", page(f"P{i}", [PARAGRAPHS[i]]).encode())
    whole = buf.getvalue()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a-cut.warc").write_bytes(whole[:-300])  # the last record loses its end
    third = whole.index(b"WARC/1.0", whole.index(b"WARC/1.0", 10) + 10)
    (tmp_path / "data" / "b-garbage.warc").write_bytes(whole[:third] + b"this is not a WARC record\r\n" * 5)
    (tmp_path / "data" / "c-notwarc.warc").write_bytes(b"<html><body>a page saved as .warc</body></html>\n")
    docs, bad, _ = split(read(sources(tmp_path, "warc")))
    assert [(d.path, d.url) for d in docs] == [
        ("data/a-cut.warc", "http://e.org/0"),
        ("data/a-cut.warc", "http://e.org/1"),
        ("data/b-garbage.warc", "http://e.org/0"),
        ("data/b-garbage.warc", "http://e.org/1"),
    ]
    got = {b.location: b for b in bad}
    assert {k: b.reason for k, b in got.items()} == {
        "data/a-cut.warc:3": "truncated_file",
        "data/b-garbage.warc:3": "malformed_warc",
        "data/c-notwarc.warc:1": "malformed_warc",
    }
    # 300 bytes cut = the record's 4 closing CRLF bytes (outside its block) + 296 bytes of its block
    assert "ends 296 bytes before the end of this record" in got["data/a-cut.warc:3"].detail
    assert f"from decompressed byte {third} is lost" in got["data/b-garbage.warc:3"].detail
    assert "does not start with a WARC/1.x version line" in got["data/c-notwarc.warc:1"].detail


# --- HTML files ----------------------------------------------------------------------------------------


def test_html_folder_with_links_out_of_the_root_and_binary_files(tmp_path):
    site = tmp_path / "site"
    (site / "blog").mkdir(parents=True)
    (site / "index.html").write_text(page("Our town", PARAGRAPHS[:2]))
    (site / "blog" / "soup.htm").write_bytes(
        page("Soup", PARAGRAPHS[1:2], charset_meta="windows-1252").replace("soup", "soupe à l'oignon").encode("cp1252")
    )
    (site / "blog" / "notes.txt").write_text("not a page")
    (site / "logo.html").write_bytes(b"GIF89a\x00\x00\x01")
    outside = tmp_path / "private.html"
    outside.write_text(page("SECRET PAGE", ["TOP-SECRET " * 30]))
    os.symlink(outside, site / "leak.html")
    docs, bad, _ = split(read(sources(tmp_path, "html", path="site")))
    assert [d.path for d in docs] == ["site/blog/soup.htm", "site/index.html"]
    assert "soupe à l'oignon" in docs[0].text and docs[0].metadata["charset"] == "cp1252"
    assert docs[1].url is None and docs[1].metadata["title"] == "Our town" and NAV[0] not in docs[1].text
    assert sorted((b.location, b.reason) for b in bad) == [
        ("site/leak.html", "symlink_outside_root"),
        ("site/logo.html", "binary_file"),
    ]
    assert "TOP-SECRET" not in json.dumps([r.to_row() for r in docs + bad])


IDLE_HELP = Path(sysconfig.get_paths()["stdlib"]) / "idlelib" / "help.html"


@pytest.mark.skipif(not IDLE_HELP.is_file(), reason="this Python ships without idlelib")
def test_real_documentation_page_that_ships_with_python(tmp_path):
    """CPython's IDLE help (a Sphinx page: navigation bars, sidebar, footer) read in place, and in a WARC."""
    docs, bad, _ = split(read(sources(tmp_path, "html", path="{stdlib}/idlelib/help.html")))
    assert not bad and len(docs) == 1
    doc = docs[0]
    assert doc.path == "help.html" and doc.metadata["html_lang"] == "en"
    assert doc.metadata["title"].startswith("IDLE") and doc.metadata["num_links"] > 100
    assert len(doc.text) > 10_000 and doc.text.startswith("IDLE")  # the article, not the top navigation bar
    assert "Found a bug?" not in doc.text and "previous |" not in doc.text  # Sphinx footer and related bar
    # The same bytes as an HTTP response give the same text.
    with open(tmp_path / "idle.warc.gz", "wb") as f:
        response(WARCWriter(f, gzip=True), "https://docs.python.org/3/library/idle.html", IDLE_HELP.read_bytes())
    (from_warc,) = split(read(sources(tmp_path, "warc", path="idle.warc.gz")))[0]
    assert from_warc.text == doc.text and from_warc.url.endswith("idle.html")


# --- determinism and the stage -------------------------------------------------------------------------


def test_ingest_units_are_byte_identical_on_rerun_and_count_skipped_records(tmp_path):
    small_archive(tmp_path / "data" / "a.warc.gz")
    small_archive(tmp_path / "data" / "b.warc", gz=False)
    (spec,) = load_sources(sources(tmp_path, "warc"))
    outputs = []
    for run in ("one", "two"):
        step = IngestStep([spec])
        results = [run_unit(step, u, tmp_path / run / u.key, step.fingerprint()) for u in step.units()]
        assert [r.skipped for r in results] == [False, False]
        outputs.append([r.output for r in results])
        stats = results[0].stats.merge(results[1].stats)
        assert stats.docs_out == 4 and stats.quarantined == Counter(not_html=2)
        assert stats.extra == {"skipped_warc_warcinfo": 2, "skipped_warc_request": 2, "skipped_http_status_not_2xx": 2}
    assert outputs[0] == outputs[1]
    assert len(resolve_paths(spec)) == 2


@pytest.mark.slow
def test_stage_runs_on_a_warc_source(tmp_path):
    data = tmp_path / "corpus" / "data"
    data.mkdir(parents=True)
    with open(data / "crawl.warc.gz", "wb") as f:
        w = WARCWriter(f, gzip=True)
        request(w, "http://e.org/")
        for i, para in enumerate(PARAGRAPHS):
            response(w, f"http://e.org/{i}", page(f"Page {i}", [para]).encode())
        response(w, "http://e.org/logo.png", b"\x89PNG" + bytes(300), content_type="image/png")
    src = sources(tmp_path / "corpus", "warc", path="data/*.warc.gz", extra='license = "CC-BY-4.0"\nlang = "en"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    out = subprocess.run(
        [sys.executable, "-m", "flows.stage", "general", "--sources", str(src), "--out", str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "funnel.json").read_text())
    assert summary["records_read"] == 5 and summary["quarantined"] == 1  # 4 pages + the PNG; the request skipped
    assert summary["records_read"] == summary["docs_final"] + summary["dropped"] + summary["quarantined"]
    assert summary["docs_final"] >= 1, summary["funnel"]
