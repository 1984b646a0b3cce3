"""Throughput of the WARC reader (ingest/web.py) against its parts: warcio alone, and trafilatura alone.

Builds a .warc.gz of `--pages` HTML responses (one gzip member each, as Common Crawl writes them): the IDLE help
page that ships with CPython (79 KB, a Sphinx page) every `--real-every` pages, and pages written here of random
words with navigation, sidebar and footer (~6 KB, the size of a median web page's text-heavy HTML), plus one
request record per response. Then, in this process, CPU seconds for

- `warcio`: ArchiveIterator over the file, reading every payload (the floor of any WARC reader);
- `trafilatura`: `extract()` with datatrove's Trafilatura settings on the decoded HTML strings alone;
- `read_warc`: the reader (decompression via ingest/streams.py, warcio, charset, page signals, extraction).

    .venv/bin/python benchmarks/bench_web.py --pages 600
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IDLE_HELP = Path(sysconfig.get_paths()["stdlib"]) / "idlelib" / "help.html"


def _written_page(rng: random.Random, words: list[str], i: int) -> str:
    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."

    paras = "\n".join(f"<p>{' '.join(sentence() for _ in range(rng.randint(3, 7)))}</p>" for _ in range(8))
    nav = " | ".join(f'<a href="/s{k}">{rng.choice(words)}</a>' for k in range(12))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Page {i}</title></head><body>'
        f"<header><nav>{nav}</nav></header><div class='sidebar'><ul>"
        + "".join(f"<li><a href='/r{k}'>{sentence()}</a></li>" for k in range(6))
        + f"</ul></div><main><article><h1>Page {i}</h1>{paras}</article></main>"
        f"<footer><p>Copyright {2000 + i % 25}. <a href='/privacy'>Privacy</a></p></footer></body></html>"
    )


def build(path: Path, pages: int, real_every: int, seed: int = 0) -> tuple[list[str], int]:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    words = ["".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    real = IDLE_HELP.read_text(encoding="utf-8") if IDLE_HELP.is_file() else None
    htmls = []
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for i in range(pages):
            html = real if real and real_every and i % real_every == 0 else _written_page(rng, words, i)
            htmls.append(html)
            url = f"http://bench.example/{i}"
            req = b"GET / HTTP/1.1\r\nHost: bench.example\r\n\r\n"
            w.write_record(w.create_warc_record(url, "request", payload=io.BytesIO(req)))
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(html.encode()), http_headers=http))
    return htmls, sum(len(h.encode()) for h in htmls)


def _cpu(fn) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=600)
    ap.add_argument("--real-every", type=int, default=20, help="one IDLE help page every N pages (0: none)")
    args = ap.parse_args()

    from trafilatura import extract
    from trafilatura.deduplication import LRU_TEST
    from warcio.archiveiterator import ArchiveIterator

    from ingest.readers import read_source
    from ingest.sources import load_sources
    from schemas import Document

    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "data" / "bench.warc.gz"
        warc.parent.mkdir()
        htmls, html_bytes = build(warc, args.pages, args.real_every)
        (Path(tmp) / "s.toml").write_text('[[source]]\nname = "b"\ndomain = "web"\nformat = "warc"\npath = "data/*"\n')
        (spec,) = load_sources(Path(tmp) / "s.toml")

        def warcio_only() -> int:
            n = 0
            with open(warc, "rb") as f:
                for rec in ArchiveIterator(f):
                    n += len(rec.content_stream().read())
            return n

        def trafilatura_only() -> int:
            n = 0
            for h in htmls:
                LRU_TEST.clear()
                n += len(extract(h, favor_precision=True, include_comments=False, deduplicate=True) or "")
            return n

        def reader() -> int:
            return sum(isinstance(r, Document) for r in read_source(spec))

        rows = [
            ("warcio (parse + read payloads)", *_cpu(warcio_only)),
            ("trafilatura extract (HTML strings)", *_cpu(trafilatura_only)),
            ("read_warc (everything)", *_cpu(reader)),
        ]
        docs = rows[2][2]
        print(
            f"{args.pages} pages ({warc.stat().st_size / 2**20:.1f} MB .warc.gz, {html_bytes / 2**20:.1f} MB of HTML; "
            f"IDLE help every {args.real_every}), {docs} documents out"
        )
        print(f"| {'step':<36} | {'CPU s':>7} | {'pages/s':>8} | {'HTML MB/s':>9} |")
        print(f"|{'-' * 38}|{'-' * 8}:|{'-' * 9}:|{'-' * 10}:|")
        for name, secs, _ in rows:
            print(f"| {name:<36} | {secs:7.2f} | {args.pages / secs:8.1f} | {html_bytes / 2**20 / secs:9.2f} |")


if __name__ == "__main__":
    main()
