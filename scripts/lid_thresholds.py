"""Write filters/data/lid_thresholds.json: a language-ID confidence threshold per language, derived as FineWeb-2 did.

FineWeb-2 (Penedo et al. 2025, arXiv 2506.20920, section 3, "Language identification") keeps a document when
GlotLID's confidence for its language is above a threshold of that language, computed from the confidences X of
the documents the model assigned to it: max(0.3, min(0.9, median(X) - std(X))). A language whose text the model
reads surely gets a high bar; one that shares its score with close languages (bs/hr/sr, ms/id, nb/nn) a low one,
instead of losing most of its documents to a single 0.65. FineWeb-2's published values (`language_score` in its
configs) are GlotLID's and do not transfer to our cascade's scores, so the same rule is applied to the cascade
(`filters.langid.LangId`, default settings, which reads prose as in the filter chain).

Reference text: lingua's test sentences (pemistahl/lingua-rs, `language-models/<lang>/testdata/sentences.txt`,
Apache-2.0, from the Leipzig corpora; 75 languages), the lines NOT in the shared sample that bench_langid.py and
the tests report accuracy on (`multilingual_lingua_testdata/lingua_testdata_sample.jsonl`), so the thresholds are
not fitted to the evaluation sentences. Three sentences of a language are joined into one text (~360 characters,
closer to a web document than a single sentence), `--texts` texts per language.

English has no row: it keeps FineWeb's 0.65 (datatrove's `LanguageFilter`), so English decisions stay datatrove's.
A label the cascade assigned to fewer than `--min-texts` texts has no row either (its threshold would rest on a
handful of scores): it keeps the filter's `min_score`.

Usage: .venv/bin/python scripts/lid_thresholds.py LINGUA_RS_CHECKOUT --commit SHA [--sample PATH] [--texts 100]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from core.paths import REPO_ROOT

OUT = REPO_ROOT / "filters" / "data" / "lid_thresholds.json"
SAMPLE = REPO_ROOT.parent / "shared" / "corpora" / "multilingual_lingua_testdata" / "lingua_testdata_sample.jsonl"
FLOOR, CEILING = 0.3, 0.9  # FineWeb-2's clip
SENTENCES_PER_TEXT = 3


def held_out_texts(checkout: Path, sample: Path, n_texts: int) -> dict[str, list[str]]:
    """Per language, `n_texts` texts of 3 sentences each, from lines the shared evaluation sample does not hold."""
    evaluation = [json.loads(line) for line in sample.open(encoding="utf-8")]
    used_lines = {(r["lang"], r["source_line"]) for r in evaluation if r["kind"] == "sentences"}
    used_texts = {r["text"] for r in evaluation}
    out = {}
    for lang in sorted({r["lang"] for r in evaluation}):
        path = checkout / "language-models" / lang / "testdata" / "sentences.txt"
        lines = [
            text
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if (text := line.strip()) and (lang, number) not in used_lines and text not in used_texts
        ]
        random.Random(f"{lang}-lid-thresholds").shuffle(lines)
        lines = lines[: n_texts * SENTENCES_PER_TEXT]
        out[lang] = [" ".join(lines[i : i + SENTENCES_PER_TEXT]) for i in range(0, len(lines), SENTENCES_PER_TEXT)]
    return out


def fineweb2_threshold(scores: list[float]) -> float:
    """max(0.3, min(0.9, median - standard deviation)) of one language's confidences (FineWeb-2)."""
    return round(max(FLOOR, min(CEILING, statistics.median(scores) - statistics.pstdev(scores))), 3)


def build(checkout: Path, commit: str, sample: Path, n_texts: int, min_texts: int) -> dict:
    from filters.langid import LangId

    texts = [t for group in held_out_texts(checkout, sample, n_texts).values() for t in group]
    scores: dict[str, list[float]] = defaultdict(list)
    for pred, _ in LangId().predict_batch(texts):
        scores[pred.lang].append(pred.score)
    languages = {
        lang: {
            "min_score": fineweb2_threshold(values),
            "texts": len(values),
            "median": round(statistics.median(values), 3),
            "std": round(statistics.pstdev(values), 3),
        }
        for lang, values in sorted(scores.items())
        if lang not in ("en", "unknown") and len(values) >= min_texts
    }
    return {
        "source": {
            "repository": "pemistahl/lingua-rs",
            "commit": commit,
            "path": "language-models/<lang>/testdata/sentences.txt",
            "licence": "Apache-2.0",
            "held_out": f"lines not in {sample.name} (the evaluation sample)",
            "texts_per_language": n_texts,
            "sentences_per_text": SENTENCES_PER_TEXT,
        },
        "rule": {
            "paper": "Penedo et al. 2025, FineWeb2, arXiv 2506.20920, section 3 (language identification)",
            "threshold": "max(0.3, min(0.9, median(X) - std(X))), X = cascade scores of the texts assigned to the label",
            "model": "filters.langid.LangId() defaults (cascade)",
            "min_texts": min_texts,
            "not_in_table": "English (FineWeb's 0.65) and labels assigned to fewer than min_texts texts",
        },
        "languages": languages,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a checkout of pemistahl/lingua-rs (its language-models/ folder)")
    ap.add_argument("--commit", required=True, help="the checkout's commit, recorded as provenance")
    ap.add_argument("--sample", type=Path, default=SAMPLE, help="the evaluation sample whose lines are left out")
    ap.add_argument("--texts", type=int, default=100, help="texts (of 3 sentences) per language")
    ap.add_argument("--min-texts", type=int, default=30, help="fewest texts a label needs for a row")
    args = ap.parse_args()
    if not (args.checkout / "language-models").is_dir():
        sys.exit(f"{args.checkout}/language-models does not exist: give a checkout of pemistahl/lingua-rs")
    if not args.sample.is_file():
        sys.exit(f"{args.sample} does not exist: --sample is the evaluation sample whose lines are left out")
    data = build(args.checkout, args.commit, args.sample, args.texts, args.min_texts)
    head = json.dumps({k: v for k, v in data.items() if k != "languages"}, ensure_ascii=False, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data["languages"].items())
    OUT.write_text(head[:-2] + ',\n "languages": {\n' + rows + "\n }\n}\n", encoding="utf-8")
    print(f"{OUT}: {len(data['languages'])} languages")


if __name__ == "__main__":
    main()
