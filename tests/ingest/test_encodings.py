"""Charsets read as browsers read them (ingest/encodings.py, through ingest/web.py): the WHATWG label table, the
HTML Standard's sniffing order, and detection of undeclared pages, on real text in each legacy encoding.

Real text, all shipped with what is installed: CPython's CJK codec test texts (Lib/test/cjkencodings, the legacy
bytes as they ship: Chinese in Big5 and GB2312, Japanese in EUC-JP and Shift_JIS, Korean in EUC-KR and its
windows-949 superset, Chinese in GBK), spaCy's example sentences per language (Russian, Ukrainian, Bulgarian,
Hebrew, Arabic, Greek, Czech, Turkish; spacy/lang/*/examples.py), and apprise's Thai translation (a .po file).
Text a legacy encoding lacks is written as `&#N;`, as a CMS writes it.
"""

from __future__ import annotations

import codecs
import importlib
import io
import re
import sysconfig
import unicodedata
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from ingest.encodings import (
    PYTHON_CODECS,
    WHATWG_LABELS,
    decode_html,
    get_encoding,
    prescan_meta,
    python_codec,
    sniff_html,
    url_tld,
)
from ingest.readers import read_source
from ingest.sources import load_sources
from schemas import Document, QuarantineRecord

CJK_TESTS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"


def cjk_text(stem: str) -> str:
    """The prose of one of CPython's CJK codec test files: the lines that its WHATWG codec reads as CPython's own
    codec does (the EUC-KR file ends with a test of 8-byte jamo composition, which no browser decodes)."""
    raw = (CJK_TESTS / f"{stem}.txt").read_bytes()
    web = python_codec(get_encoding(stem.replace("_", "-")) or stem)
    lines = [ln for ln in raw.split(b"\n") if ln.decode(stem) == ln.decode(web, errors="replace")]
    return b"\n".join(lines).decode(stem).strip()


def spacy_sentences(lang: str) -> list[str]:
    return importlib.import_module(f"spacy.lang.{lang}.examples").sentences


def thai_sentences() -> list[str]:
    import apprise

    po = Path(apprise.__file__).parent / "i18n" / "th" / "LC_MESSAGES" / "apprise.po"
    found = re.findall(r'^msgstr "(.+)"$', po.read_text(encoding="utf-8"), re.MULTILINE)
    return [s for s in found if re.search("[\u0e00-\u0e7f]", s)][:60]


# (label the page would carry, language, real text); one case per legacy encoding of issue 19, and two more.
LEGACY = {
    "big5": ("zh-Hant", lambda: [cjk_text("big5")]),
    "gb2312": ("zh-Hans", lambda: [cjk_text("gb2312")]),
    "euc-jp": ("ja", lambda: [cjk_text("euc_jp")]),
    "shift_jis": ("ja", lambda: [cjk_text("shift_jis")]),
    "euc-kr": ("ko", lambda: [cjk_text("euc_kr")]),
    "koi8-r": ("ru", lambda: spacy_sentences("ru")),
    "windows-1251": ("uk", lambda: spacy_sentences("uk")),
    "iso-8859-5": ("ru", lambda: spacy_sentences("ru")),
    "windows-1255": ("he", lambda: spacy_sentences("he")),
    "windows-1256": ("ar", lambda: spacy_sentences("ar")),
    "iso-8859-6": ("ar", lambda: spacy_sentences("ar")),
    "iso-8859-7": ("el", lambda: spacy_sentences("el")),
    "tis-620": ("th", thai_sentences),
    "windows-1250": ("cs", lambda: spacy_sentences("cs")),
    "windows-1254": ("tr", lambda: spacy_sentences("tr")),
}
SCRIPTS = {
    "zh-Hant": {"CJK"},
    "zh-Hans": {"CJK"},
    "ja": {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "IDEOGRAPHIC"},
    "ko": {"HANGUL", "CJK"},
    "ru": {"CYRILLIC"},
    "uk": {"CYRILLIC"},
    "he": {"HEBREW"},
    "ar": {"ARABIC"},
    "el": {"GREEK"},
    "th": {"THAI"},
    "cs": {"LATIN"},
    "tr": {"LATIN"},
}


def page(paragraphs: list[str], head: str = "", title: str = "News") -> str:
    """A page as a 2000s site served it: no charset anywhere unless `head` adds one."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html>\n<html><head>{head}<title>{title}</title><link rel='stylesheet' href='/s.css'></head>"
        f"<body>\n<nav><a href='/'>/</a> | <a href='/news'>news</a></nav>\n<main>{body}</main>\n"
        f"<footer>&copy; 2009</footer></body></html>"
    )


def legacy_page(label: str) -> tuple[str, bytes]:
    """(the page as text, its bytes in the legacy encoding `label`), no charset declared."""
    _, sentences = LEGACY[label]
    html = page(sentences())
    raw = html.encode(python_codec(get_encoding(label)), errors="xmlcharrefreplace")
    return raw.decode(python_codec(get_encoding(label))), raw


# --- the label table -------------------------------------------------------------------------------------


def test_label_table_is_the_whatwg_one_and_every_codec_exists():
    assert len(WHATWG_LABELS) == 40  # the standard's 40 encodings
    labels = [label for group in WHATWG_LABELS.values() for label in group]
    assert len(labels) == len(set(labels)) == 228 and all(label == label.lower() for label in labels)
    for name, codec in PYTHON_CODECS.items():
        if codec is not None:
            codecs.lookup(codec)
        else:
            assert name in ("replacement", "x-user-defined")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("shift_jis", "cp932"),
        ("x-sjis", "cp932"),
        ("Shift-JIS", "cp932"),
        ("windows-31j", "cp932"),
        ("euc-kr", "cp949"),
        ("ks_c_5601-1987", "cp949"),
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("big5", "big5hkscs"),
        ("iso-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("ascii", "cp1252"),
        ("US-ASCII", "cp1252"),
        ("tis-620", "cp874"),
        ("iso-8859-11", "cp874"),
        ("iso-8859-9", "cp1254"),
        (" utf8\t", "utf-8"),
        ("koi8", "koi8_r"),
        ("iso-8859-8-i", "iso8859_8"),
        ("utf-16", "utf-16-le"),
    ],
)
def test_labels_name_the_superset_browsers_decode(label, codec):
    assert python_codec(get_encoding(label)) == codec


def test_labels_python_knows_but_the_standard_does_not_are_no_encoding():
    for label in ("latin-1", "cp932", "cp949", "utf8mb4", "x-klingon", "euc_kr", ""):
        assert get_encoding(label) is None, label


# --- undeclared pages: real text in each legacy encoding -----------------------------------------------


@pytest.mark.parametrize("label", list(LEGACY))
def test_undeclared_page_in_a_legacy_encoding_is_decoded_into_its_script(label):
    lang, _ = LEGACY[label]
    want, raw = legacy_page(label)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # what the reader quarantined before (invalid_utf8)
    text, charset = decode_html(raw)
    assert charset.source == "detected" and charset.declared is None, charset
    assert text == want, f"{label} read as {charset.encoding}"
    scripts = {unicodedata.name(c, "?").split()[0] for c in text if c.isalpha() and ord(c) > 0x7F}
    assert scripts and scripts <= SCRIPTS[lang], (label, scripts)  # its own script, no mojibake letters


def _warc(path: Path, pages: list[tuple[str, bytes, str]]) -> None:
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for url, raw, content_type in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(raw), http_headers=http))


def _read(tmp_path: Path, fmt: str, path: str) -> list:
    src = tmp_path / "sources.toml"
    src.write_text(f'[[source]]\nname = "w"\ndomain = "web"\nformat = "{fmt}"\npath = "{path}"\n')
    (spec,) = load_sources(src)
    return list(read_source(spec))


def test_legacy_pages_in_a_warc_and_as_files_become_documents_with_their_charset_recorded(tmp_path):
    labels = list(LEGACY)
    pages = {label: legacy_page(label) for label in labels}
    (tmp_path / "data").mkdir()
    _warc(
        tmp_path / "data" / "old.warc.gz",
        [(f"http://site{i}.example/", pages[lb][1], "text/html") for i, lb in enumerate(labels)],
    )
    (tmp_path / "site").mkdir()
    for i, label in enumerate(labels):
        (tmp_path / "site" / f"{i:02d}.html").write_bytes(pages[label][1])
    for recs in (_read(tmp_path, "warc", "data/*"), _read(tmp_path, "html", "site")):
        assert not [r for r in recs if isinstance(r, QuarantineRecord)]
        docs = [r for r in recs if isinstance(r, Document)]
        assert len(docs) == len(labels)
        for doc, label in zip(docs, labels):
            want, raw = pages[label]
            longest = max(LEGACY[label][1](), key=len).split("\n")[0]
            assert longest in doc.text, (label, doc.text[:200])
            m = doc.metadata
            assert m["charset_source"] == "detected" and "charset_declared" not in m, m
            assert raw.decode(m["charset"]) == want  # the codec recorded reads the page as it was written


# --- declared labels: the supersets -------------------------------------------------------------------


def test_declared_narrow_labels_decode_bytes_only_their_superset_has():
    # Korean with syllables outside KS X 1001 (windows-949 only), declared euc-kr in HTTP; Chinese with
    # characters outside GB2312 (GBK only), declared gb2312 in a <meta>.
    korean = (CJK_TESTS / "cp949.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        korean.decode("euc_kr")
    text, charset = decode_html(b"<html><body><p>" + korean + b"</p></body></html>", "EUC-KR")
    assert (charset.encoding, charset.codec, charset.source) == ("euc-kr", "cp949", "http")
    assert (CJK_TESTS / "cp949-utf8.txt").read_text(encoding="utf-8").strip() in text
    chinese = (CJK_TESTS / "gbk.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        chinese.decode("gb2312")
    text, charset = decode_html(b'<html><head><meta charset="gb2312"></head><body>' + chinese + b"</body></html>")
    assert (charset.codec, charset.source, charset.declared) == ("gb18030", "meta", "gb2312")
    assert (CJK_TESTS / "gbk-utf8.txt").read_text(encoding="utf-8").strip() in text


@pytest.mark.parametrize(
    ("label", "text", "narrow"),
    [
        ("x-sjis", "①会議は㈱東京で行います。", "shift_jis"),
        ("shift_jis", "髙橋さんの会社は№１です。", "shift_jis"),
        ("iso-8859-1", "Le prix est de 20 € — “très” bien…", "latin-1"),
        ("tis-620", "ราคา 20 บาท… “ดีมาก”", "tis_620"),
        ("iso-8859-9", "Fiyatı 20 € — “çok” iyi", "iso8859_9"),
    ],
)
def test_declared_labels_decode_what_every_browser_decodes(label, text, narrow):
    raw = page([text], head=f'<meta http-equiv="Content-Type" content="text/html; charset={label}">').encode(
        python_codec(get_encoding(label))
    )
    try:
        narrow_ok = raw.decode(narrow) == raw.decode(python_codec(get_encoding(label)))
    except UnicodeDecodeError:
        narrow_ok = False
    assert not narrow_ok  # the codec of the label's own name reads these bytes wrong or not at all
    decoded, charset = decode_html(raw)
    assert charset.source == "meta" and charset.declared == label and text in decoded


# --- the sniffing order -------------------------------------------------------------------------------


def test_sniffing_order_bom_http_meta_xml():
    body = page(["Привет, мир."], head='<meta charset="koi8-r">')
    bom = codecs.BOM_UTF8 + body.encode()
    assert sniff_html(bom, "windows-1251").source == "bom"  # a BOM beats the HTTP header
    text, charset = decode_html(bom, "windows-1251")
    assert text == body and charset.codec == "utf-8"  # the BOM itself is not text
    utf16 = codecs.BOM_UTF16_LE + body.encode("utf-16-le")
    assert decode_html(utf16)[0] == body
    raw = body.encode("koi8-r")
    assert (sniff_html(raw, "koi8-r").source, sniff_html(raw).source) == ("http", "meta")
    assert sniff_html(raw, "x-klingon").source == "meta"  # an unknown HTTP label is skipped, as browsers do
    xhtml = b'<?xml version="1.0" encoding="windows-1251"?>\n<html><body><p>' + "Привет".encode("cp1251") + b"</p>"
    assert (sniff_html(xhtml).encoding, sniff_html(xhtml).source) == ("windows-1251", "xml")


def test_prescan_follows_the_html_standard():
    assert prescan_meta(b'<meta http-equiv="content-type" content="text/html; charset=EUC-JP">') == (
        "euc-jp",
        "EUC-JP",
    )
    assert prescan_meta(b"<meta content='text/html;charset=x-sjis' http-equiv=Content-Type>") == (
        "shift_jis",
        "x-sjis",
    )
    assert prescan_meta(b'<meta content="text/html; charset=euc-jp">') is None  # content= needs the http-equiv
    assert prescan_meta(b'<!-- <meta charset="big5"> --><meta charset="gbk">') == ("gbk", "gbk")  # comments skipped
    assert prescan_meta(b'<meta charset="x-klingon"><meta charset="koi8-u">') == ("koi8-u", "koi8-u")  # next one
    assert prescan_meta(b'<meta charset="utf-16le">') == ("utf-8", "utf-16le")  # ASCII-readable bytes: not UTF-16
    assert prescan_meta(b'<meta charset="x-user-defined">') == ("windows-1252", "x-user-defined")
    late = page(["x" * 1100], head="").replace("</main>", '</main><meta charset="koi8-r">')
    assert prescan_meta(late.encode()[:1024]) is None and sniff_html(late.encode()).source == "utf8"


def test_contradicted_and_refused_declarations():
    # A stale latin-1 header over UTF-8 bytes: UTF-8 (a browser would show mojibake), the label kept.
    text = page(["Привет, мир. Ça va? 日本語"])
    decoded, charset = decode_html(text.encode(), "iso-8859-1")
    assert decoded == text and (charset.source, charset.declared) == ("utf8", "iso-8859-1")
    # A server's default utf-8 header over a windows-1250 page: the detector takes over.
    czech = page(spacy_sentences("cs")).encode("cp1250", errors="xmlcharrefreplace")
    decoded, charset = decode_html(czech, "utf-8")
    assert charset.source == "detected" and charset.declared == "utf-8" and charset.encoding == "windows-1250"
    assert spacy_sentences("cs")[0] in decoded
    # The standard's replacement encoding: refused, with the reason.
    assert decode_html(b"<html><body>\x1b$)C\x0e!!\x0f</body></html>", "iso-2022-kr") == (
        None,
        "replacement (from http, label 'iso-2022-kr') has no text to decode",
    )


def test_tld_of_the_url_is_the_detectors_hint(tmp_path):
    sentence = "Průměrná mzda je 30000 Kč."  # spaCy's Czech example: windows-1252 to a detector without a hint
    assert sentence in spacy_sentences("cs")
    raw = f"<html><body><p>{sentence}</p></body></html>".encode("cp1250")
    assert decode_html(raw)[1].encoding == "windows-1252"
    assert decode_html(raw, url="http://www.zpravy.cz/mzdy")[1].encoding == "windows-1250"
    (tmp_path / "data").mkdir()
    _warc(tmp_path / "data" / "cz.warc.gz", [("http://www.zpravy.cz/mzdy", raw, "text/html")])
    (doc,) = _read(tmp_path, "warc", "data/*")
    assert doc.text == sentence and doc.metadata["charset"] == "cp1250"


def test_url_tld():
    assert url_tld("http://www.example.co.jp/a?b") == b"jp"
    assert url_tld("https://EXAMPLE.PL.:8080/") == b"pl"
    assert url_tld("http://xn--e1afmkfd.xn--p1ai/") == b"xn--p1ai"
    for url in (None, "", "http://192.0.2.1/", "http://[::1]/", "http://[::1/", "dns:example.org"):
        assert url_tld(url) is None, url
