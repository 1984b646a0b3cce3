"""Character encodings of web pages, read as browsers read them.

The label table is the WHATWG Encoding Standard's (section 4.2 "Names and labels"; its machine-readable form is
`encodings.json` of the whatwg/encoding repository), copied here as data: every label a page may put in an HTTP
`Content-Type` or a `<meta charset>`, mapped to the one encoding a browser decodes it with. Two things follow
that a plain `codecs.lookup` gets wrong: a label names a *superset* on the web (`shift_jis` and `x-sjis` are
windows-31j, `euc-kr` is windows-949, `gb2312` is GBK, decoded by the gb18030 decoder, `iso-8859-1` and
`ascii` are windows-1252, `tis-620` is windows-874, `iso-8859-9` is windows-1254), and a label outside the
table is no encoding at all (a browser ignores it and goes on sniffing), however many names Python knows.

`sniff_html` follows the HTML Standard's encoding sniffing algorithm (section 13.2.3.2) in its order: a byte order
mark, the transport's charset (HTTP), a `<meta charset>` / `<meta http-equiv=content-type>` in the first 1024
bytes (the prescan, section 13.2.3.3), an XML declaration (XHTML), then, for an undeclared page, detection:
valid UTF-8 is UTF-8, other bytes go to a statistical detector (`detect_legacy`). Where it came from is kept
(`Charset.source`), so a reader can record it in the document's metadata.

This is for HTML (files and WARC responses). Plain text and JSON Lines sources are UTF-8 by contract
(RFC 8259 for JSON; WET conversion records are UTF-8 by Common Crawl's format), and stay strict.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# WHATWG Encoding Standard, section 4.2 "Names and labels" (the table as of 2024): one row per encoding, in the
# standard's order (the encoding, legacy single-byte, multi-byte Chinese simplified and traditional, Japanese,
# Korean, miscellaneous): its name, the Python codec that decodes it as the standard's decoder does, and its
# labels (matched ASCII case-insensitively, after stripping ASCII whitespace); an indented line continues the labels.
#
# The codec is the superset the standard's index is: windows-31j (cp932) for shift_jis, windows-949 (cp949) for
# euc-kr, gb18030 for gbk ("the gbk decoder is the gb18030 decoder"), Big5-HKSCS for big5 (index-big5 holds the
# HKSCS extensions). "-": no text to decode; "replacement" is the standard's refusal of ISO-2022-KR/CN and HZ (they
# can smuggle markup past filters), x-user-defined maps bytes to private-use code points.
_TABLE = """
utf-8           utf-8         unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8
ibm866          cp866         866 cp866 csibm866 ibm866
iso-8859-2      iso8859_2     csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987
                              l2 latin2
iso-8859-3      iso8859_3     csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988
                              l3 latin3
iso-8859-4      iso8859_4     csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988
                              l4 latin4
iso-8859-5      iso8859_5     csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5
                              iso_8859-5:1988
iso-8859-6      iso8859_6     arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6
                              iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6
                              iso_8859-6:1987
iso-8859-7      iso8859_7     csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7
                              iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek
iso-8859-8      iso8859_8     csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8
                              iso88598 iso_8859-8 iso_8859-8:1988 visual
iso-8859-8-i    iso8859_8     csiso88598i iso-8859-8-i logical
iso-8859-10     iso8859_10    csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6
iso-8859-13     iso8859_13    iso-8859-13 iso8859-13 iso885913
iso-8859-14     iso8859_14    iso-8859-14 iso8859-14 iso885914
iso-8859-15     iso8859_15    csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9
iso-8859-16     iso8859_16    iso-8859-16
koi8-r          koi8_r        cskoi8r koi koi8 koi8-r koi8_r
koi8-u          koi8_u        koi8-ru koi8-u
macintosh       mac_roman     csmacintosh mac macintosh x-mac-roman
windows-874     cp874         dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874
windows-1250    cp1250        cp1250 windows-1250 x-cp1250
windows-1251    cp1251        cp1251 windows-1251 x-cp1251
windows-1252    cp1252        ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100
                              iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252
                              x-cp1252
windows-1253    cp1253        cp1253 windows-1253 x-cp1253
windows-1254    cp1254        cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9
                              iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254
windows-1255    cp1255        cp1255 windows-1255 x-cp1255
windows-1256    cp1256        cp1256 windows-1256 x-cp1256
windows-1257    cp1257        cp1257 windows-1257 x-cp1257
windows-1258    cp1258        cp1258 windows-1258 x-cp1258
x-mac-cyrillic  mac_cyrillic  x-mac-cyrillic x-mac-ukrainian
gbk             gb18030       chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk
gb18030         gb18030       gb18030
big5            big5hkscs     big5 big5-hkscs cn-big5 csbig5 x-x-big5
euc-jp          euc_jp        cseucpkdfmtjapanese euc-jp x-euc-jp
iso-2022-jp     iso2022_jp    csiso2022jp iso-2022-jp
shift_jis       cp932         csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis
euc-kr          cp949         cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989
                              ksc5601 ksc_5601 windows-949
replacement     -             csiso2022kr hz-gb-2312 iso-2022-cn iso-2022-cn-ext iso-2022-kr replacement
utf-16be        utf-16-be     unicodefffe utf-16be
utf-16le        utf-16-le     csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le
x-user-defined  -             x-user-defined
"""


def _parse_table(table: str) -> tuple[dict[str, tuple[str, ...]], dict[str, str | None]]:
    labels: dict[str, list[str]] = {}
    codecs_by_name: dict[str, str | None] = {}
    name = ""
    for line in table.strip("\n").splitlines():
        if line.startswith(" "):
            labels[name] += line.split()
            continue
        name, codec, *rest = line.split()
        labels[name], codecs_by_name[name] = rest, None if codec == "-" else codec
    return {k: tuple(v) for k, v in labels.items()}, codecs_by_name


WHATWG_LABELS, PYTHON_CODECS = _parse_table(_TABLE)  # encoding name -> labels; encoding name -> Python codec
_BY_LABEL: dict[str, str] = {label: name for name, labels in WHATWG_LABELS.items() for label in labels}


def _codec_name(name: str | None) -> str | None:
    """Python's canonical name of a codec ("cp874" for "CP874" or "windows_874"), or None if Python has none."""
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None


# Python codec -> the first WHATWG encoding in the table that it decodes (gb18030 -> gbk, iso8859-8 -> iso-8859-8).
_BY_PYTHON_CODEC: dict[str, str] = {}
for _name, _codec in PYTHON_CODECS.items():
    if _codec is not None:
        _BY_PYTHON_CODEC.setdefault(codecs.lookup(_codec).name, _name)
_ASCII_WHITESPACE = "\t\n\f\r "
PRESCAN_BYTES = 1024  # HTML Standard 13.2.3.2: the prescan looks at the first 1024 bytes at most
_TLD = re.compile(r"[a-z0-9-]+")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_BE, "utf-16be"), (codecs.BOM_UTF16_LE, "utf-16le"))


def get_encoding(label: str) -> str | None:
    """The WHATWG encoding a label names ("get an encoding", Encoding Standard 4.2), or None for no encoding.

    Args:
        label: as written in a header or a `<meta>`: surrounding ASCII whitespace and case do not matter.
    """
    return _BY_LABEL.get(label.strip(_ASCII_WHITESPACE).lower())


def python_codec(encoding: str) -> str | None:
    """The Python codec that decodes a WHATWG encoding name (see `PYTHON_CODECS`); None if it has no text."""
    return PYTHON_CODECS[encoding]


# --- the prescan (HTML Standard 13.2.3.3, "prescan a byte stream to determine its encoding") ----------------

_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_META_TAG = re.compile(rb"<meta[\t\n\f\r /]([^>]*)", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"""([^\t\n\f\r />][^\t\n\f\r /=>]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\t\n\f\r >]*))?""")
_CHARSET_IN_CONTENT = re.compile(rb"""charset\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\t\n\f\r ;"']+))""", re.IGNORECASE)
_XML_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")


def _meta_attributes(body: bytes) -> dict[bytes, bytes]:
    """Attributes of one `<meta ...>` tag, names lower-cased, first occurrence kept (as the prescan does)."""
    attrs: dict[bytes, bytes] = {}
    for m in _ATTRIBUTE.finditer(body):
        value = m.group(2) or b""
        if value[:1] in (b'"', b"'"):
            value = value[1:-1]
        attrs.setdefault(m.group(1).lower(), value)
    return attrs


def prescan_meta(head: bytes) -> tuple[str, str] | None:
    """(WHATWG encoding, label) from the first `<meta>` in `head` that names a known encoding, else None.

    A `charset` attribute counts on its own; a `content` attribute's `charset=` only beside
    `http-equiv="content-type"`. Comments are skipped. Per the standard, a UTF-16 answer means UTF-8 (bytes that
    were read as ASCII to find the tag are not UTF-16) and x-user-defined means windows-1252.

    Args:
        head: the first `PRESCAN_BYTES` bytes of the page.
    """
    for m in _META_TAG.finditer(_COMMENT.sub(b"<!---->", head)):
        attrs = _meta_attributes(m.group(1))
        label = attrs.get(b"charset")
        if label is None and attrs.get(b"http-equiv", b"").strip().lower() == b"content-type":
            found = _CHARSET_IN_CONTENT.search(attrs.get(b"content", b""))
            label = next((g for g in found.groups() if g is not None), None) if found else None
        if not label:
            continue
        text = label.decode("ascii", "replace")
        encoding = get_encoding(text)
        if encoding is None:
            continue  # an unknown label: the prescan goes on to the next <meta>
        if encoding in ("utf-16be", "utf-16le"):
            encoding = "utf-8"
        elif encoding == "x-user-defined":
            encoding = "windows-1252"
        return encoding, text
    return None


# --- detection of undeclared bytes --------------------------------------------------------------------------


def url_tld(url: str | None) -> bytes | None:
    """The top-level domain of a URL's host, as chardetng takes it (lower-case ASCII, Punycode), or None.

    Args:
        url: e.g. "http://www.example.co.jp/a" -> b"jp"; an IP address, or no host, gives None.
    """
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed URL (bad port, bad IPv6 literal)
        return None
    tld = (host or "").rstrip(".").rsplit(".", 1)[-1]
    return tld.encode() if _TLD.fullmatch(tld) and not tld.isdigit() else None


def detect_legacy(raw: bytes, tld: bytes | None = None) -> str | None:
    """The WHATWG encoding of bytes that declare none and are not UTF-8, by Firefox's detector (chardetng).

    chardetng (Henri Sivonen, 2020; Firefox's since version 73) scores the legacy encodings a browser would
    otherwise fall back to, from byte-pair and character-class statistics of each script; it is deterministic,
    answers in WHATWG names and, like Firefox, takes the page's top-level domain as a hint (a `.pl` page is more
    likely windows-1250 than windows-1252). Measured against charset-normalizer, faust-cchardet (datatrove's
    choice) and chardet 7 on real text of 18 legacy encodings: `benchmarks/bench_charsets.py`, BENCHMARKS.md.

    Args:
        raw: the whole payload (the detector reads every byte, as a browser reading to the end would).
        tld: the page's top-level domain (`url_tld`), or None.
    """
    from chardetng_py import EncodingDetector  # imported here: a compiled module, only pages that need it pay

    detector = EncodingDetector()
    detector.feed(raw, last=True)
    answer = detector.guess(tld=tld, allow_utf8=False)
    # NOTE: chardetng-py answers with a Python codec name where Python lacks the WHATWG one ("cp874" for
    # windows-874, "gb18030" for GBK): both kinds of name are mapped back.
    return get_encoding(answer) or _BY_PYTHON_CODEC.get(_codec_name(answer) or "")


# --- the sniffing order ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Charset:
    """How a page's bytes are to be decoded.

    Args:
        encoding: the WHATWG encoding name, e.g. "shift_jis".
        codec: the Python codec that decodes it, e.g. "cp932"; None when the encoding has no text to decode.
        source: where it was decided: "bom", "http", "meta", "xml" (a declaration followed), "utf8" (bytes that
            are valid UTF-8 and no declaration, or one they contradict), "detected" (the detector's guess).
        declared: the label the page declared (HTTP first, then `<meta>`, then the XML declaration), followed or
            not (unknown to the standard, or contradicted by the bytes); None when it declared none.
        bom: bytes of the byte order mark to skip before decoding.
    """

    encoding: str
    codec: str | None
    source: str
    declared: str | None = None
    bom: int = 0


def declared_charset(raw: bytes, transport_label: str | None = None) -> tuple[str | None, str | None, str]:
    """(WHATWG encoding, label, source) of the declaration a browser follows, in the HTML Standard's order: the
    HTTP charset, the `<meta>` prescan, the XML declaration. An unknown label is skipped, as browsers do; the
    encoding is None when no known label was found (the label is then the first unknown one, if any).

    Args:
        raw: the payload bytes.
        transport_label: the `charset` parameter of the HTTP Content-Type, if any.
    """
    unknown = None
    if transport_label:
        encoding = get_encoding(transport_label)
        if encoding is not None:
            return encoding, transport_label, "http"
        unknown = transport_label
    head = raw[:PRESCAN_BYTES]
    meta = prescan_meta(head)
    if meta is not None:
        return meta[0], meta[1], "meta"
    xml = _XML_DECLARATION.match(head)
    if xml is not None:
        label = xml.group(1).decode("ascii")
        encoding = get_encoding(label)
        if encoding is not None:
            return encoding, label, "xml"
        unknown = unknown or label
    return None, unknown, "none"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def undeclared(raw: bytes, declared: str | None = None, tld: bytes | None = None) -> Charset:
    """The charset of bytes with no usable declaration: UTF-8 if they are valid UTF-8, else the detector's guess.

    Args:
        raw: the payload bytes.
        declared: the label the page gave, if any (kept for the record).
        tld: the page's top-level domain, the detector's hint.
    """
    if _is_utf8(raw):
        return Charset("utf-8", "utf-8", "utf8", declared)
    encoding = detect_legacy(raw, tld) or "windows-1252"  # the HTML Standard's fallback for most locales
    return Charset(encoding, python_codec(encoding), "detected", declared)


def sniff_html(raw: bytes, transport_label: str | None = None, url: str | None = None) -> Charset:
    """The charset to decode an HTML payload with, in the HTML Standard's order (see the module docstring).

    NOTE: one step goes past what a browser does, for text a browser would show as mojibake: a page that declares
    a legacy encoding but whose bytes are valid UTF-8 with non-ASCII characters is read as UTF-8 (a CMS that writes
    UTF-8 under a stale `iso-8859-1` header; real legacy text of any length is practically never valid UTF-8).
    Browsers never detect UTF-8 on the web (chardetng's `allow_utf8=False`) so that authors cannot come to rely
    on it; a corpus has no such concern.

    Args:
        raw: the payload bytes.
        transport_label: the `charset` parameter of the HTTP Content-Type, if any.
        url: the page's URL, if known (its top-level domain is the detector's hint).
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return Charset(encoding, python_codec(encoding), "bom", bom=len(bom))
    encoding, label, source = declared_charset(raw, transport_label)
    if encoding is None:
        return undeclared(raw, label, url_tld(url))
    if encoding != "utf-8" and not raw.isascii() and _is_utf8(raw):
        return Charset("utf-8", "utf-8", "utf8", label)
    return Charset(encoding, python_codec(encoding), source, label)


def decode_html(
    raw: bytes, transport_label: str | None = None, url: str | None = None
) -> tuple[str, Charset] | tuple[None, str]:
    """(text, charset) of an HTML payload, or (None, why) when no charset decodes it.

    The sniffed charset first. A declaration whose codec fails on these bytes (a page labelled windows-1252 that
    is windows-1250, or cut inside a multi-byte character) is not the end: the undeclared path follows (UTF-8, then
    the detector). Decoding is strict: a page is never decoded with replacement characters, and one that no
    charset decodes is for the quarantine. An encoding with no text (WHATWG "replacement": ISO-2022-KR/CN, HZ;
    x-user-defined) is refused as browsers refuse it.

    Args:
        raw: the payload bytes.
        transport_label: the `charset` parameter of the HTTP Content-Type, if any.
        url: the page's URL, if known.
    """
    charset = sniff_html(raw, transport_label, url)
    if charset.codec is None:
        return None, f"{charset.encoding} (from {charset.source}, label {charset.declared!r}) has no text to decode"
    try:
        return raw[charset.bom :].decode(charset.codec), charset
    except UnicodeDecodeError as e:
        why = f"{charset.encoding} (from {charset.source}): {e}"
    if charset.source in ("utf8", "detected"):
        return None, why
    fallback = undeclared(raw, charset.declared, url_tld(url))
    if fallback.codec is None:
        return None, why
    try:
        return raw.decode(fallback.codec), fallback
    except UnicodeDecodeError as e:
        return None, f"{why}; then {fallback.encoding} (from {fallback.source}): {e}"
