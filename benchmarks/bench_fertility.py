"""Tokenizer fertility per language: tokens per character and per word of o200k_harmony and Qwen.

Text: spaCy's example sentences (`spacy/lang/<code>/examples.py`, news, facts and questions in 68 languages),
read as `format = "pystrings"` reads them (ingest/pystrings.py: the module's `sentences` literal through `ast`,
never imported; the folder names the language), one document per language, sentences joined by newlines. Words are
the prose filters' (report/fertility.py: ICU for Chinese and Japanese, spaCy elsewhere, punctuation left out), so
the per-word column compares languages by what the filters count.

Prints a markdown table (one row per language, sorted by script then language; the script is the Unicode script of
most of the letters), the machine and the date, and the time each tokenizer took.

Usage: nice .venv/bin/python -m benchmarks.bench_fertility [--langs zh,ja,de]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import time
import unicodedata
from pathlib import Path

from benchmarks.harness import machine
from ingest.docstrings import parse_python
from ingest.pystrings import assigned_strings, declared_language
from report.fertility import TOKENIZERS, count_words


def spacy_examples() -> dict[str, str]:
    """Language code -> its example sentences, one per line, for every language spaCy ships sentences for."""
    import spacy

    texts = {}
    for path in sorted(Path(spacy.__file__).parent.glob("lang/*/examples.py")):
        lang = declared_language(path)
        strings = assigned_strings(parse_python(path.read_text(encoding="utf-8")), "sentences")
        if lang and strings:
            texts[lang] = "\n".join(s.strip() for s in strings if s.strip())
    return texts


def script_of(text: str) -> str:
    """The Unicode script most of `text`'s letters belong to (the first word of their character names)."""
    counts = collections.Counter(unicodedata.name(c, "?").split()[0] for c in text if c.isalpha())
    script = counts.most_common(1)[0][0] if counts else "?"
    return {"CJK": "Han", "HIRAGANA": "kana", "KATAKANA": "kana", "HANGUL": "Hangul"}.get(script, script.title())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", help="comma-separated language codes (default: every one spaCy has sentences for)")
    args = parser.parse_args(argv)
    from sharding.tokenizer import load_tokenizer

    texts = spacy_examples()
    if args.langs:
        texts = {k: v for k, v in texts.items() if k in args.langs.split(",")}
    tokenizers = {name: load_tokenizer(name) for name in TOKENIZERS}
    seconds = dict.fromkeys(TOKENIZERS, 0.0)
    rows = []
    for lang, text in texts.items():
        row = {"lang": lang, "script": script_of(text), "chars": len(text), "words": count_words(text, lang)}
        for name, tok in tokenizers.items():
            t0 = time.perf_counter()
            row[name] = len(tok.encode_np(text))
            seconds[name] += time.perf_counter() - t0
        rows.append(row)
    rows.sort(key=lambda r: (r["script"], r["lang"]))
    load = os.getloadavg()[0]
    print(f"spaCy example sentences, {len(rows)} languages; {datetime.date.today()}; {machine()}; load {load:.1f}")
    head = "| language | script | characters | words |"
    head += "".join(f" {n} tokens/char | {n} tokens/word |" for n in TOKENIZERS)
    print(head)
    print("|" + "---|" * (4 + 2 * len(TOKENIZERS)))
    for r in rows:
        cells = [r["lang"], r["script"], f"{r['chars']:,}", f"{r['words']:,}"]
        for n in TOKENIZERS:
            cells += [f"{r[n] / r['chars']:.2f}", f"{r[n] / r['words']:.2f}" if r["words"] else "-"]
        print("| " + " | ".join(cells) + " |")
    total_chars = sum(r["chars"] for r in rows)
    for n in TOKENIZERS:
        total = sum(r[n] for r in rows)
        rate = total_chars / max(seconds[n], 1e-9) / 1e6
        print(f"{n}: {total:,} tokens, {total / total_chars:.3f} per character, {rate:.1f} M characters/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
