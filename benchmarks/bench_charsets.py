"""Charset detection on real text in legacy encodings: which detector reads undeclared pages right.

Pages are made from real text written by others: the web sentences of lingua's test data (75 languages) and the
UDHR translations in ../shared/corpora, plus CPython's own CJK test texts (Lib/test/cjkencodings, the legacy
bytes as they ship). Each text is put in a small HTML page that declares no charset (a navigation bar, a script
and a footer in ASCII around it, as pages are), encoded into a legacy encoding its language was written in on the
web (characters the encoding lacks become `&#N;` references, as a CMS writes them), in three sizes: one sentence,
five sentences, and ~2,000 characters of UDHR prose. Pages that come out as valid UTF-8 (pure ASCII) are left out:
the reader never asks a detector about those.

A detector is right on a page when decoding the bytes with its answer gives the text that was encoded (so
windows-1255 for ISO-8859-8 Hebrew, or GBK for GB2312 Chinese, are right: same text). Each answer is mapped
through the WHATWG label table (ingest/encodings.py) first, as the reader does. Detectors: chardetng (Firefox's,
`chardetng-py`), charset-normalizer, faust-cchardet (uchardet; datatrove's WarcReader uses it) and chardet 7;
those not installed are skipped.

    .venv/bin/python benchmarks/bench_charsets.py [--corpora ../shared/corpora] [--detectors chardetng,...]
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.encodings import get_encoding, python_codec  # noqa: E402

CJK_TESTS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"

# encoding (WHATWG name, as the page would be labelled) -> (lingua languages, UDHR codes, CPython cjkencodings stem)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    "big5": ((), ("cmn_hant",), "big5"),
    "gb2312": (("zh",), ("cmn_hans",), "gb2312"),
    "euc-jp": (("ja",), ("jpn",), "euc_jp"),
    "shift_jis": (("ja",), ("jpn",), "shift_jis"),
    "euc-kr": (("ko",), ("kor",), "euc_kr"),
    "koi8-r": (("ru",), ("rus",), None),
    "windows-1251": (("ru", "uk", "bg", "mk"), ("rus", "ukr"), None),
    "iso-8859-5": (("ru", "bg", "mk"), ("rus",), None),
    "windows-1255": (("he",), ("heb",), None),
    "windows-1256": (("ar", "fa", "ur"), ("arb", "pes_1", "urd"), None),
    "iso-8859-6": (("ar",), ("arb",), None),
    "iso-8859-7": (("el",), ("ell_monotonic",), None),
    "tis-620": (("th",), ("tha",), None),
    "windows-1252": (("fr", "de", "es", "pt", "it", "nl", "sv", "da"), ("068", "deu_1996", "042", "por_PT"), None),
    "windows-1250": (("pl", "cs", "sk", "hu", "ro", "hr", "sl"), ("pol", "ces", "hun"), None),
    "iso-8859-2": (("pl", "cs", "hu"), ("pol", "ces"), None),
    "windows-1254": (("tr",), ("tur",), None),
    "windows-1257": (("lt", "lv", "et"), (), None),
}

# The country-code TLD a page in each language would most often be served from: chardetng's `tld` hint, as Firefox
# passes the page's (the "chardetng + TLD" column; the reader passes the TLD of the record's URL).
_ORIGINS_BY_TLD = {
    "cn": "zh cmn_hans gb2312",
    "tw": "cmn_hant big5",
    "jp": "ja jpn euc_jp shift_jis",
    "kr": "ko kor euc_kr",
    "ru": "ru rus",
    "ua": "uk ukr",
    "bg": "bg",
    "mk": "mk",
    "il": "he heb",
    "eg": "ar arb",
    "ir": "fa pes_1",
    "pk": "ur urd",
    "gr": "el ell_monotonic",
    "th": "th tha",
    "fr": "fr 068",
    "de": "de deu_1996",
    "es": "es 042",
    "pt": "pt por_PT",
    "it": "it",
    "nl": "nl",
    "se": "sv",
    "dk": "da",
    "pl": "pl pol",
    "cz": "cs ces",
    "sk": "sk",
    "hu": "hu hun",
    "ro": "ro",
    "hr": "hr",
    "si": "sl",
    "tr": "tr tur",
    "lt": "lt",
    "lv": "lv",
    "ee": "et",
}
TLDS = {origin: tld.encode() for tld, origins in _ORIGINS_BY_TLD.items() for origin in origins.split()}


def page(title: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title>\n<link rel='stylesheet' href='/s.css'>"
        f"<script>var _q = window._q || []; _q.push(['track', 'view']);</script></head><body>\n"
        f"<nav><a href='/'>/</a> | <a href='/news'>news</a> | <a href='/about'>about</a></nav>\n"
        f"<main><h1>{title}</h1>\n{body}\n</main>\n<footer>&copy; 2009 <a href='/c'>c</a></footer></body></html>"
    )


def pages(corpora: Path) -> list[tuple[str, str, str, bytes]]:
    """(encoding, origin, size, bytes) of every page."""
    lingua: dict[str, list[str]] = defaultdict(list)
    for line in (corpora / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        if r["kind"] == "sentences":
            lingua[r["lang"]].append(r["text"])
    udhr = {}
    for line in (corpora / "multilingual_udhr" / "udhr_full_selected.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        udhr[r["code"]] = r["text"]
    out = []
    for encoding, (langs, codes, cjk) in CASES.items():
        codec = python_codec(get_encoding(encoding))

        def add(origin: str, size: str, title: str, paras: list[str], codec: str = codec, enc: str = encoding) -> None:
            raw = page(title[:60], paras).encode(codec, errors="xmlcharrefreplace")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                out.append((enc, origin, size, raw))

        for lang in langs:
            sents = lingua[lang]
            for s in sents:
                add(f"lingua:{lang}", "1 sentence", s, [s])
            for i in range(0, len(sents) - 4, 5):
                add(f"lingua:{lang}", "5 sentences", sents[i], sents[i : i + 5])
        for code in codes:
            lines = [ln for ln in udhr[code].split("\n") if ln.strip()]
            chunk: list[str] = []
            for ln in lines:
                chunk.append(ln)
                if sum(map(len, chunk)) >= 2000:
                    add(f"udhr:{code}", "~2000 chars", chunk[0], chunk)
                    chunk = []
        if cjk and (CJK_TESTS / f"{cjk}.txt").is_file():
            text = (CJK_TESTS / f"{cjk}-utf8.txt").read_text(encoding="utf-8")
            paras = [p for p in text.split("\n") if p.strip()]
            add(f"cpython:{cjk}", "~2000 chars", paras[0], paras)
    return out


def _detectors(names: list[str]) -> dict[str, Callable[[bytes, bytes | None], str | None]]:
    out: dict[str, Callable[[bytes, bytes | None], str | None]] = {}
    for name in names:
        try:
            if name == "chardetng":
                from chardetng_py import EncodingDetector

                def chardetng(raw: bytes, tld: bytes | None, cls=EncodingDetector) -> str | None:
                    d = cls()
                    d.feed(raw, last=True)
                    return d.guess(tld=tld, allow_utf8=False)

                out[name] = lambda raw, tld: chardetng(raw, None)
                out["chardetng + TLD"] = chardetng
            elif name == "charset-normalizer":
                from charset_normalizer import from_bytes

                def normalizer(raw: bytes, tld: bytes | None) -> str | None:
                    best = from_bytes(raw).best()
                    return best.encoding if best else None

                out[name] = normalizer
            elif name == "cchardet":
                import cchardet

                out[name] = lambda raw, tld, m=cchardet: m.detect(raw)["encoding"]
            elif name == "chardet":
                import chardet

                out[name] = lambda raw, tld, m=chardet: m.detect(raw)["encoding"]
        except ImportError:
            print(f"({name} not installed: skipped)")
    return out


def _decode(raw: bytes, answer: str | None) -> str | None:
    if not answer:
        return None
    encoding = get_encoding(answer)
    codec = python_codec(encoding) if encoding else answer
    try:
        codecs.lookup(codec)
    except (LookupError, TypeError):
        return None
    return raw.decode(codec, errors="replace")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--corpora", type=Path, default=Path(os.environ.get("CORPUSFORGE_CORPORA", REPO.parent / "shared" / "corpora"))
    )
    ap.add_argument("--detectors", default="chardetng,charset-normalizer,cchardet,chardet")
    args = ap.parse_args()
    data = pages(args.corpora)
    print(f"{len(data)} pages, {sum(len(p[3]) for p in data) / 1e6:.2f} MB, {len(CASES)} encodings")
    detectors = _detectors(args.detectors.split(","))
    right: dict[tuple[str, str, str], int] = defaultdict(int)
    total: dict[tuple[str, str], int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    wrong_answers: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for encoding, origin, size, raw in data:
        tld = TLDS.get(origin.split(":")[1])
        truth = raw.decode(python_codec(get_encoding(encoding)))
        total[(encoding, size)] += 1
        for name, detect in detectors.items():
            t0 = time.perf_counter()
            answer = detect(raw, tld)
            seconds[name] += time.perf_counter() - t0
            if _decode(raw, answer) == truth:
                right[(name, encoding, size)] += 1
            else:
                wrong_answers[(name, encoding)][str(answer)] += 1
    sizes = ["1 sentence", "5 sentences", "~2000 chars"]
    names = list(detectors)
    print("\n| encoding | pages (1 sent / 5 sent / long) | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    overall = defaultdict(int)
    for encoding in CASES:
        counts = [total[(encoding, s)] for s in sizes]
        cells = []
        for name in names:
            per = [right[(name, encoding, s)] for s in sizes]
            overall[name] += sum(per)
            cells.append(" / ".join(f"{100 * r / c:.0f}" if c else "-" for r, c in zip(per, counts)))
        print(f"| {encoding} | {' / '.join(map(str, counts))} | " + " | ".join(cells) + " |")
    n = len(data)
    for size in sizes:
        k = sum(total[(e, size)] for e in CASES)
        print(
            f"{size}: "
            + ", ".join(f"{name} {100 * sum(right[(name, e, size)] for e in CASES) / k:.1f}%" for name in names)
        )
    print(
        "all pages: "
        + ", ".join(
            f"{name} {100 * overall[name] / n:.1f}% ({1000 * seconds[name] / n:.2f} ms/page)" for name in names
        )
    )
    print("\nwrong answers (detector, encoding: answer x count):")
    for (name, encoding), answers in sorted(wrong_answers.items()):
        print(
            f"  {name}, {encoding}: " + ", ".join(f"{a} x{c}" for a, c in sorted(answers.items(), key=lambda x: -x[1]))
        )


if __name__ == "__main__":
    main()
