"""Language ID: the cascade (`LangId(model="cascade")`) beside fastText lid.176 (`model="lid176"`).

Prints three tables from the shared corpora (../shared/corpora):
1. accuracy per language on lingua's test sentences (75 languages), cascade and lid.176 side by side, then the
   share the filter keeps with the per-language thresholds and how many of the kept labels are right;
2. accuracy on UDHR article 1 (a labelled set not from lingua) for the languages each model can return;
3. documents dropped by LID among real math/science documents (GSM8K, MATH, MMLU-STEM) with the default config
   (the stage files' `[filters.langid]` table);
and the speed (docs/s through `filter_batch`, each model in a fresh process, a first pass and a second one) with
the peak RSS of that process.

    python benchmarks/bench_langid.py [--corpora ../shared/corpora] [--limit-stem N] [--only accuracy|speed]
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.langid import LangId  # noqa: E402
from schemas import Document  # noqa: E402

# UDHR codes whose BCP 47 language subtag is an individual language of a macrolanguage we label by its 639-1 code.
_UDHR_SAME = {
    "zlm": "ms",
    "zsm": "ms",
    "azj": "az",
    "uzn": "uz",
    "cmn": "zh",
    "arb": "ar",
    "pes": "fa",
    "khk": "mn",
    "ekk": "et",
    "lvs": "lv",
    "npi": "ne",
    "ydd": "yi",
    "swh": "sw",
    "plt": "mg",
    "als": "sq",
    "nob": "nb",
    "pbu": "ps",
    "kmr": "ku",
    "no": "nb",
}
_LID176_SAME = {"nb": "no"}  # lid.176's single Norwegian label


def stage_table() -> dict:
    from stage.config import load_stage_config

    return load_stage_config("general").filters["langid"]


def _doc(text: str, i: int, domain: str = "web") -> Document:
    return Document(id=str(i), text=text, source="bench", domain=domain)


def predict(model: str, texts: list[str], **kwargs: object) -> list[str]:
    f = LangId(model=model, **kwargs)
    return [(p.lang if model == "cascade" else p[0]) for p, _ in f.predict_batch(texts)]


# ISO 639-3 macrolanguages whose members lingua's test data labels by source website, not by the text's own
# standard (see BENCHMARKS.md): Malay (ms, id), Serbo-Croatian (bs, hr, sr), Norwegian (nb, nn).
MACROLANGUAGES = {"ms": "msa", "id": "msa", "bs": "hbs", "hr": "hbs", "sr": "hbs", "nb": "nor", "nn": "nor"}


def kept_table(rows: list[dict]) -> None:
    """What the filter keeps with the per-language thresholds (filters/data/lid_thresholds.json) and how many of
    the kept labels are right; the same counting macrolanguage members as one."""
    f = LangId()
    preds = [p for p, _ in f.predict_batch(r["text"] for r in rows)]
    kept = [(r["lang"], p.lang.split("-")[0]) for r, p in zip(rows, preds) if p.score > f.threshold(p.lang)]
    right = sum(g == p for g, p in kept)
    macro = sum(MACROLANGUAGES.get(g, g) == MACROLANGUAGES.get(p, p) for g, p in kept)
    every = sum(
        MACROLANGUAGES.get(r["lang"], r["lang"]) == MACROLANGUAGES.get(p.lang.split("-")[0], p.lang.split("-")[0])
        for r, p in zip(rows, preds)
    )
    print(
        f"\nKept by the per-language thresholds: {len(kept)} of {len(rows)} ({len(kept) / len(rows):.1%}); right among"
    )
    print(f"kept {right / len(kept):.4f} ({macro / len(kept):.4f} counting ms/id, bs/hr/sr, nb/nn as their")
    print(f"macrolanguage). All sentences, macrolanguages as one: {every / len(rows):.4f}.")


def lingua_table(corpora: Path) -> None:
    rows = [json.loads(x) for x in (corpora / "multilingual_lingua_testdata/lingua_testdata_sample.jsonl").open()]
    rows = [r for r in rows if r["kind"] == "sentences"]
    texts = [r["text"] for r in rows]
    ours, theirs = predict("cascade", texts), predict("lid176", texts)
    high = predict("cascade", texts, lingua_high_accuracy_below=200)  # lingua's high accuracy mode on sentences
    n, ok_ours, ok_high, ok_theirs = Counter(), Counter(), Counter(), Counter()
    for r, a, h, b in zip(rows, ours, high, theirs):
        g = r["lang"]
        n[g] += 1
        ok_ours[g] += a.split("-")[0] == g
        ok_high[g] += h.split("-")[0] == g
        ok_theirs[g] += b == _LID176_SAME.get(g, g)
    print(f"\n## lingua test sentences ({sum(n.values())} sentences, {len(n)} languages)\n")
    print("| lang | cascade (default) | cascade, high accuracy < 200 chars | lid.176 |\n|---|---:|---:|---:|")
    for g in sorted(n):
        print(f"| {g} | {ok_ours[g] / n[g]:.3f} | {ok_high[g] / n[g]:.3f} | {ok_theirs[g] / n[g]:.3f} |")
    total = sum(n.values())
    print(
        f"| **all** | **{sum(ok_ours.values()) / total:.4f}** | **{sum(ok_high.values()) / total:.4f}** "
        f"| **{sum(ok_theirs.values()) / total:.4f}** |"
    )
    kept_table(rows)


def udhr_table(corpora: Path) -> None:
    from filters import lid_models
    from filters.langid import LID176_LABELS

    rows = [json.loads(x) for x in (corpora / "multilingual_udhr/udhr_article1.jsonl").open()]
    print("\n## UDHR article 1 (one text per translation; languages the model can return)\n")
    print("| model | texts | languages | accuracy |\n|---|---:|---:|---:|")
    for model, labels in (("cascade", lid_models.LABELS), ("lid176", LID176_LABELS)):
        items = []
        for r in rows:
            tag = r["bcp47"]
            lang = _UDHR_SAME.get(tag.split("-")[0], tag.split("-")[0])
            script = tag.split("-")[1] if "-" in tag else None
            if model == "lid176":
                lang = _LID176_SAME.get(lang, lang)
            if script and f"{lang}-{script}" in labels:
                gold = f"{lang}-{script}"
            elif lang in labels or lang in lid_models.SCRIPTED and model == "cascade":
                if script and lang != "zh" and script not in ("Latn", "Cyrl", "Arab", "Hans", "Hant", "Deva"):
                    continue  # a script the model was not trained on (mn-Mong, tl-Tglg): not comparable
                gold = lang
            else:
                continue
            items.append((gold, r["text"]))
        preds = predict(model, [t for _, t in items])
        ok = sum(p == g or (p.split("-")[0] == g) for (g, _), p in zip(items, preds))
        print(f"| {model} | {len(items)} | {len({g.split('-')[0] for g, _ in items})} | {ok / len(items):.4f} |")


def stem_docs(corpora: Path, limit: int | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in (
        "gsm8k_test",
        "gsm8k_test_socratic",
        "math500_test",
        "math_test_sample_not_in_math500",
        "mmlu_stem_test",
    ):
        texts = []
        for line in (corpora / "stem_math" / f"{name}.jsonl").open():
            r = json.loads(line)
            if "choices" in r:
                choices = ast.literal_eval(r["choices"]) if isinstance(r["choices"], str) else r["choices"]
                texts.append(r["question"] + "\n" + "\n".join(f"{'ABCD'[j]}. {c}" for j, c in enumerate(choices)))
            elif "question" in r:
                texts.append(r["question"] + "\n" + r["answer"])
            else:
                texts.append(r["problem"] + "\n" + r["solution"])
        out[name] = texts[:limit]
    return out


def stem_table(corpora: Path, limit: int | None) -> None:
    table = stage_table()
    print("\n## math/science documents dropped by LID (stage default table vs lid.176 at 0.65)\n")
    print("| set | docs | cascade dropped | kept as mostly markup | lid.176 dropped |\n|---|---:|---:|---:|---:|")
    tot = Counter()
    for name, texts in stem_docs(corpora, limit).items():
        docs = [_doc(t, i, "stem") for i, t in enumerate(texts)]
        dropped = sum(r is not True for r in LangId(**table).filter_batch(docs))
        kept = sum(d.metadata.get("langid", {}).get("kept") == "mostly_markup" for d in docs)
        ref = sum(
            r is not True
            for r in LangId(model="lid176").filter_batch([_doc(t, i, "stem") for i, t in enumerate(texts)])
        )
        tot.update(docs=len(docs), dropped=dropped, kept=kept, ref=ref)
        print(
            f"| {name} | {len(docs)} | {dropped} ({dropped / len(docs):.2%}) | {kept} | {ref} ({ref / len(docs):.2%}) |"
        )
    print(
        f"| **all** | {tot['docs']} | **{tot['dropped']} ({tot['dropped'] / tot['docs']:.2%})** | {tot['kept']} | "
        f"{tot['ref']} ({tot['ref'] / tot['docs']:.2%}) |"
    )


def _peak_rss_mib() -> float:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _speed_child(model: str, corpus_file: str) -> None:
    """In a fresh process: time LangId.filter_batch over the corpus (batches of 256) twice, print one JSON line.

    The first pass includes lingua loading each language's n-grams the first time a text needs it (~0.4 s per
    language, once per process); the second is the steady state of a long-running worker.
    """
    texts = json.loads(Path(corpus_file).read_text())
    t0 = time.perf_counter()
    f = LangId(model=model)
    f.filter_batch([_doc(texts[0], 0)])  # loads py3langid and CLD3 (or fastText)
    times = [time.perf_counter()]
    for _ in range(2):
        for i in range(0, len(texts), 256):
            f.filter_batch([_doc(t, j) for j, t in enumerate(texts[i : i + 256])])
        times.append(time.perf_counter())
    out = {"load_s": times[0] - t0, "cold_s": times[1] - times[0], "warm_s": times[2] - times[1]}
    print(json.dumps({**out, "docs": len(texts), "rss_mib": _peak_rss_mib()}))


def speed_table(corpora: Path) -> None:
    import tempfile

    sets = {}
    rows = [json.loads(x) for x in (corpora / "multilingual_lingua_testdata/lingua_testdata_sample.jsonl").open()]
    sets["lingua sentences (~120 chars)"] = [r["text"] for r in rows if r["kind"] == "sentences"]
    udhr = [json.loads(x)["text"] for x in (corpora / "multilingual_udhr/udhr_full_selected.jsonl").open()]
    sets["UDHR full texts x4 (5-18 KB)"] = udhr * 4
    stem = stem_docs(corpora, 300)
    sets["math/science docs"] = [t for texts in stem.values() for t in texts]
    print("\n## speed (a fresh process per cell, filter_batch in batches of 256; docs/s of a first pass, which")
    print("includes lingua loading each language's models the first time, and of a second pass)\n")
    print(
        "| texts | docs | cascade docs/s first / second | lid.176 docs/s | cascade peak RSS MiB | lid.176 peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, texts in sets.items():
        res = {}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(texts, fh)
        for model in ("cascade", "lid176"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", model, fh.name],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            res[model] = json.loads(out.stdout.strip().splitlines()[-1])
        Path(fh.name).unlink()
        c, f = res["cascade"], res["lid176"]
        print(
            f"| {name} | {len(texts)} | {c['docs'] / c['cold_s']:,.0f} / {c['docs'] / c['warm_s']:,.0f} | "
            f"{f['docs'] / f['warm_s']:,.0f} | {c['rss_mib']:,.0f} | {f['rss_mib']:,.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--limit-stem", type=int, default=None, help="documents per math/science set (default all)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["accuracy", "speed"], help="run only these tables")
    args = ap.parse_args()
    if args.child:
        _speed_child(*args.child)
        return
    if not args.corpora.is_dir():
        sys.exit(f"shared corpora not found at {args.corpora} (--corpora)")
    if args.only != "speed":
        lingua_table(args.corpora)
        udhr_table(args.corpora)
        stem_table(args.corpora, args.limit_stem)
    if args.only != "accuracy":
        speed_table(args.corpora)


if __name__ == "__main__":
    main()
