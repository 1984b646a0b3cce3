"""Multilingual prose through the general stage's web filters: kept share, tokenizer fertility and the prose
filters' speed per language, and their cost against an older tree.

Documents: the UDHR translations of ../shared/corpora/multilingual_udhr as web pages with no `lang` (language ID
labels them, as for any page): the 59 full declarations, the first ~1,300 characters of their articles (a web-page
sized piece), the 531 Article 1 texts (most under Gopher's 50 words: dropped as short in every language), and each
declaration cut into pages of four paragraphs (the per-language table).
The chain is the general stage's web chain up to the word blocklist (langid, url_blocklist, gopher_repetition,
gopher_quality, c4, fineweb, word_blocklist), built from configs/stages/general.toml.

Per language (one row per declaration): pages kept by that chain; o200k_harmony and Qwen tokens per word of the
declaration (report/fertility.py, words as the filters count them); the prose filters alone (language given:
gopher_repetition, gopher_quality, c4, fineweb, word_blocklist with their defaults) in pages per CPU second, median of
`--repeats`. `--before DIR` measures the same prose filters of another tree (`git archive 9d17eb8 | tar -x -C DIR`:
the filters before issue 19) in a subprocess on the same pages, and prints the cost per page against it.

`--no-table` runs the filters with `per_language_thresholds=False` (segmentation stays): the table's effect.

Usage: flock /tmp/cf-bench.lock nice .venv/bin/python -m benchmarks.bench_multilingual [--repeats 3] [--no-table]
       [--before DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from schemas import Document

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))
CHAIN = ("langid", "url_blocklist", "gopher_repetition", "gopher_quality", "c4", "fineweb", "word_blocklist")
GROUPS = {  # script group -> the UDHR's BCP 47 tags (speed summed per group)
    "Latin": ["en", "es", "fr", "de-1996", "sv", "id", "tr", "vi", "zu", "pl", "ha", "yo"],
    "Cyrillic": ["ru", "uk", "kk", "mn-Cyrl"],
    "Arabic": ["ar", "fa", "ur"],
    "Indic": ["hi", "bn", "ta", "te", "ml", "kn", "gu", "si"],
    "Han/kana": ["zh", "zh-Hant", "ja"],
    "Thai/Lao/Khmer/Myanmar": ["th", "lo", "km", "my"],
    "Hangul": ["ko"],
    "Ethiopic/Tibetan": ["am", "ti", "bo"],
}


def _rows() -> list[dict]:
    with (CORPORA / "multilingual_udhr" / "udhr_full_selected.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _articles(text: str, chars: int = 1300) -> str:
    """The declaration's articles (title and preamble skipped) up to about `chars` characters, whole paragraphs."""
    out: list[str] = []
    for block in text.split("\n\n")[2:]:
        out.append(block)
        if sum(map(len, out)) >= chars:
            break
    return "\n\n".join(out)


def document_sets() -> dict[str, list[tuple[str, str]]]:
    """Set name -> (UDHR code, text)."""
    full = _rows()
    with (CORPORA / "multilingual_udhr" / "udhr_article1.jsonl").open(encoding="utf-8") as f:
        article1 = [json.loads(line) for line in f]
    return {
        "full": [(r["code"], r["text"]) for r in full],
        "articles_1300": [(r["code"], _articles(r["text"])) for r in full],
        "article_1": [(r["code"], r["text"]) for r in article1],
    }


def _chain(table: bool) -> list:
    from filters.chain import build_chain
    from stage.config import load_stage_config

    filters = {k: dict(v) for k, v in load_stage_config("general").filters.items()}
    if not table:
        for name in ("gopher_repetition", "gopher_quality", "fineweb"):
            filters.setdefault(name, {})["per_language_thresholds"] = False
    return [s for s in build_chain(filters) if s.name in CHAIN]


def kept_shares(table: bool) -> dict[str, dict[str, str]]:
    """Set name -> code -> "kept" or the drop reason (language ID decides the language)."""
    from filters.base import run_chain

    chain = _chain(table)
    out = {}
    for name, docs in document_sets().items():
        batch = [Document(id=code, text=text, source="udhr", domain="web") for code, text in docs]
        lineage: list = []
        kept = {d.id for d in run_chain(batch, chain, lineage)}
        lang = {d.id: d.lang for d in batch}
        dropped = {r.doc_id: f"{r.reason} ({lang[r.doc_id]})" for r in lineage if r.action == "dropped"}
        out[name] = {code: "kept" if code in kept else dropped[code] for code, _ in docs}
    return out


def prose_chain() -> list:
    """The general stage's prose filters for web pages, built the same way in any tree since one module per filter
    (cc8f086): their defaults, C4 without its terminal-punctuation line rule (configs/stages/base.toml)."""
    from filters.c4 import C4Quality
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition
    from filters.word_blocklist import WordBlocklist

    return [
        GopherRepetition(),
        GopherQuality(),
        C4Quality(filter_no_terminal_punct=False),
        FineWebQuality(),
        WordBlocklist(),
    ]


def label(row: dict) -> str:
    """The language label a declaration's pages are filtered under (language ID's labels for Chinese)."""
    return {"cmn_hans": "zh-Hans", "cmn_hant": "zh-Hant"}.get(row["code"], row["bcp47"].split("-")[0])


def pages() -> dict[str, list[str]]:
    """UDHR code -> its declaration in pages of four paragraphs."""
    out = {}
    for r in _rows():
        blocks = r["text"].split("\n\n")
        out[r["code"]] = ["\n\n".join(blocks[i : i + 4]) for i in range(0, len(blocks), 4)]
    return out


def speed_by_language(repeats: int) -> dict[str, float]:
    """UDHR code -> pages per CPU second of `prose_chain()` (language given), median of `repeats`."""
    from filters.base import run_chain

    chain, by_code, labels = prose_chain(), pages(), {r["code"]: label(r) for r in _rows()}

    def docs(code: str) -> list[Document]:
        return [
            Document(id=f"{code}-{i}", text=t, source="u", domain="web", lang=labels[code])
            for i, t in enumerate(by_code[code])
        ]

    for code in by_code:  # warm: tokenizers, lists, ICU dictionaries
        list(run_chain(docs(code), chain, []))
    times: dict[str, list[float]] = {code: [] for code in by_code}
    for _ in range(repeats):  # rounds over every language, so that a busy spell hits them all alike
        for code in by_code:
            batch = docs(code)
            t0 = time.process_time()  # CPU time: the 2 cores are shared, wall time swings 2x
            list(run_chain(batch, chain, []))
            times[code].append(time.process_time() - t0)
    return {code: len(by_code[code]) / max(statistics.median(t), 1e-9) for code, t in times.items()}


def speed_before(tree: Path, repeats: int) -> dict[str, float]:
    """`speed_by_language` of the filters in `tree` (an older checkout), run there in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CORPUSFORGE_CORPORA": str(CORPORA)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--speed-json", "--repeats", str(repeats)]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pages_kept() -> dict[str, tuple[int, int]]:
    """UDHR code -> (pages kept, pages) through the general web chain, language ID deciding."""
    from filters.base import run_chain

    by_code = pages()
    batch = [
        Document(id=f"{code}#{i}", text=t, source="udhr", domain="web")
        for code, ps in by_code.items()
        for i, t in enumerate(ps)
    ]
    kept = collections.Counter(d.id.split("#")[0] for d in run_chain(batch, _chain(True), []))
    return {code: (kept[code], len(ps)) for code, ps in by_code.items()}


def fertility_by_language() -> dict[str, dict]:
    """UDHR code -> report.fertility's row of its full declaration."""
    from report.fertility import fertility

    rows = _rows()
    return {r["code"]: fertility({label(r): [r["text"]]})[0] for r in rows}


def script_of(text: str) -> str:
    """The Unicode script (first word of the character names; Han, Kana) of most of the letters."""
    import unicodedata

    names = collections.Counter(unicodedata.name(c, "?").split()[0] for c in text[:2000] if c.isalpha())
    top = names.most_common(1)[0][0] if names else "-"
    return {"CJK": "Han", "HIRAGANA": "Kana", "KATAKANA": "Kana"}.get(top, top.title())


def language_table(repeats: int, before: Path | None) -> None:
    rows, kept, fert = _rows(), pages_kept(), fertility_by_language()
    then = speed_before(before, repeats) if before else {}
    now = speed_by_language(repeats)
    print(
        "\n| language | UDHR | script | pages kept | o200k_harmony tokens/word | qwen tokens/word | pages/s |"
        + (" pages/s before | cost per page |" if then else "")
        + "\n|---|---|---|---|---|---|---|"
        + ("---|---|" if then else "")
    )
    for r in sorted(rows, key=lambda r: (script_of(r["text"]), r["code"])):
        code, f = r["code"], fert[r["code"]]
        line = (
            f"| {label(r)} | {code} | {script_of(r['text'])} | {kept[code][0]}/{kept[code][1]} | "
            f"{f['o200k_harmony_per_word']:.2f} | {f['qwen_per_word']:.2f} | {now[code]:,.0f} |"
        )
        if then:
            line += f" {then[code]:,.0f} | {then[code] / now[code]:.2f}x |"
        print(line)
    group_of = {tag: group for group, tags in GROUPS.items() for tag in tags}
    for group in GROUPS:
        codes = [r["code"] for r in rows if group_of.get(r["bcp47"]) == group]
        rate = {
            name: sum(kept[c][1] for c in codes) / sum(kept[c][1] / v[c] for c in codes)
            for name, v in (("now", now), ("before", then))
            if v
        }
        print(f"{group}: " + ", ".join(f"{name} {v:,.0f} pages/s" for name, v in rate.items()))
    n_pages = sum(n for _, n in kept.values())
    total = n_pages / sum(kept[c][1] / now[c] for c in now)
    print(
        f"\nall {len(rows)} languages: {sum(k for k, _ in kept.values())}/{n_pages} pages kept, {total:,.0f} pages/s"
    )
    if then:
        total_then = n_pages / sum(kept[c][1] / then[c] for c in then)
        print(f"before: {total_then:,.0f} pages/s; cost per page now / before: {total_then / total:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-table", action="store_true", help="per_language_thresholds=False (segmentation stays)")
    ap.add_argument("--before", type=Path, help="an older tree whose prose filters to time on the same pages")
    ap.add_argument("--speed-json", action="store_true", help=argparse.SUPPRESS)  # --before's subprocess
    args = ap.parse_args()
    if not (CORPORA / "multilingual_udhr").is_dir():
        raise SystemExit(f"{CORPORA}/multilingual_udhr not found (set CORPUSFORGE_CORPORA)")
    if args.speed_json:
        print(json.dumps(speed_by_language(args.repeats)))
        return
    verdicts = kept_shares(not args.no_table)
    print("| set | kept | drop reasons (label from language ID) |\n|---|---|---|")
    for name, by_code in verdicts.items():
        kept = sum(v == "kept" for v in by_code.values())
        reasons = collections.Counter(v.split(" (")[0] for v in by_code.values() if v != "kept")
        print(f"| {name} | {kept}/{len(by_code)} | {', '.join(f'{r} {n}' for r, n in reasons.most_common(6))} |")
    print("\nfull declarations and articles_1300 not kept:")
    for name in ("full", "articles_1300"):
        print(f"  {name}: " + ", ".join(f"{c}: {v}" for c, v in verdicts[name].items() if v != "kept"))
    language_table(args.repeats, args.before)


if __name__ == "__main__":
    main()
