"""Multilingual prose through the general stage's web filters: kept share per language and the prose filters' speed.

Documents: the UDHR translations of ../shared/corpora/multilingual_udhr as web pages with no `lang` (language ID
labels them, as for any page): the 59 full declarations, the first ~1,300 characters of their articles (a web-page
sized piece), and the 531 Article 1 texts (most under Gopher's 50 words: dropped as short in every language).
The chain is the general stage's web chain up to the word blocklist (langid, url_blocklist, gopher_repetition,
gopher_quality, c4, fineweb, word_blocklist), built from configs/stages/general.toml.

Speed: the prose filters alone (language given, so no LID) on the full declarations cut into pages of four
articles, documents per CPU second per script group, median of `--repeats`, and over all groups together.

`--no-table` runs the filters with `per_language_thresholds=False` (segmentation stays): the table's effect.
Numbers from before segmentation and the table come from running this on commit 9d17eb8 (see BENCHMARKS.md).

Usage: flock /tmp/cf-bench.lock .venv/bin/python -m benchmarks.bench_multilingual [--repeats 3] [--no-table]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import time
from pathlib import Path

from schemas import Document

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))
CHAIN = ("langid", "url_blocklist", "gopher_repetition", "gopher_quality", "c4", "fineweb", "word_blocklist")
GROUPS = {  # script group -> the UDHR's BCP 47 tags
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


def speed(table: bool, repeats: int) -> dict[str, float]:
    """Script group -> documents per second of the prose filters (language given)."""
    from filters.base import run_chain

    chain = [s for s in _chain(table) if s.name not in ("langid", "url_blocklist")]
    by_tag = {r["bcp47"]: r["text"] for r in _rows()}
    lang_of = {"zh": "zh-Hans", "zh-Hant": "zh-Hant"}
    pages = {
        group: [
            (tag, "\n\n".join(b[i : i + 4]))
            for tag in tags
            for b in [by_tag[tag].split("\n\n")]
            for i in range(0, len(b), 4)
        ]
        for group, tags in GROUPS.items()
    }

    def docs(group: str) -> list[Document]:
        return [
            Document(id=f"{t}-{i}", text=x, source="u", domain="web", lang=lang_of.get(t, t.split("-")[0]))
            for i, (t, x) in enumerate(pages[group])
        ]

    for group in GROUPS:  # warm: tokenizers, lists, ICU dictionaries
        list(run_chain(docs(group), chain, []))
    out = {}
    for group in GROUPS:
        times = []
        for _ in range(repeats):
            batch = docs(group)
            t0 = time.process_time()  # CPU time: the 2 cores are shared, wall time swings 2x
            list(run_chain(batch, chain, []))
            times.append(time.process_time() - t0)
        out[group] = len(pages[group]) / statistics.median(times)
    out["all groups"] = sum(map(len, pages.values())) / sum(len(pages[g]) / out[g] for g in GROUPS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-table", action="store_true", help="per_language_thresholds=False (segmentation stays)")
    args = ap.parse_args()
    if not (CORPORA / "multilingual_udhr").is_dir():
        raise SystemExit(f"{CORPORA}/multilingual_udhr not found (set CORPUSFORGE_CORPORA)")
    table = not args.no_table
    verdicts = kept_shares(table)
    print("| set | kept | drop reasons (label from language ID) |\n|---|---|---|")
    for name, by_code in verdicts.items():
        kept = sum(v == "kept" for v in by_code.values())
        reasons = collections.Counter(v.split(" (")[0] for v in by_code.values() if v != "kept")
        print(f"| {name} | {kept}/{len(by_code)} | {', '.join(f'{r} {n}' for r, n in reasons.most_common(6))} |")
    print("\nfull declarations and articles_1300 not kept:")
    for name in ("full", "articles_1300"):
        print(f"  {name}: " + ", ".join(f"{c}: {v}" for c, v in verdicts[name].items() if v != "kept"))
    print(f"\n| script group | docs per CPU second (prose filters, median of {args.repeats}) |\n|---|---|")
    for group, rate in speed(table, args.repeats).items():
        print(f"| {group} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
