"""Our filter chain (langid + prose quality filters) vs the same filters run by datatrove's LocalPipelineExecutor.

Both sides see the same documents, built from the real corpora in ../shared/corpora (UDHR, GSM8K / MATH /
MMLU, lingua sentences joined into paragraphs, clickbait headlines one by one and as lists, source files as
web pages). datatrove runs LanguageFilter (pointed at the local lid.176.ftz, no download) then, in FineWeb's
order, GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter (line-level checks, no bad words) and
FineWebQualityFilter, all with their English defaults; ours runs `FastTextLangId` then `GopherRepetition`,
`GopherQuality`, `C4Quality`, `FineWebQuality` with `language="en"`, so decisions must be identical. Reports
docs/s (median of 3), the speed ratio, the number of disagreements, and time at N and 2N documents. The
machine's 2 cores are shared, so single numbers are noisy; datatrove's time includes its executor overhead.

Usage: flock /tmp/cf-bench.lock .venv/bin/python -m benchmarks.bench_filters [--n 2000] [--repeats 3]
With `--workers 1,2`, both chains run as whole processes instead (benchmarks/bench_filters_workers.py).
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it

from benchmarks.harness import corpora_jsonl, machine
from schemas import Document


def build_docs(seed: int = 0) -> list[Document]:
    """Every document of the mixed benchmark set, shuffled with `seed` (about 11k documents)."""
    rows: list[tuple[str, str]] = []  # (id, text)
    for r in corpora_jsonl("multilingual_udhr/udhr_full_selected.jsonl"):
        rows.append((f"udhr-full-{r['code']}", r["text"]))
    for r in corpora_jsonl("multilingual_udhr/udhr_article1.jsonl"):
        rows.append((f"udhr-a1-{r['code']}", r["text"]))
    for name in ("gsm8k_test", "gsm8k_test_socratic"):
        for i, r in enumerate(corpora_jsonl(f"stem_math/{name}.jsonl")):
            rows.append((f"{name}-{i}", f"{r['question']}\n\n{r['answer']}"))
    for name in ("math500_test", "math_test_sample_not_in_math500"):
        for i, r in enumerate(corpora_jsonl(f"stem_math/{name}.jsonl")):
            rows.append((f"{name}-{i}", f"{r['problem']}\n\n{r['solution']}"))
    for i, r in enumerate(corpora_jsonl("stem_math/mmlu_stem_test.jsonl")):
        rows.append((f"mmlu-{i}", r["question"] + "\n" + "\n".join(f"- {c}" for c in r["choices"])))
    by_lang: dict[tuple[str, str], list[str]] = {}
    for r in corpora_jsonl("multilingual_lingua_testdata/lingua_testdata_sample.jsonl"):
        by_lang.setdefault((r["lang"], r["kind"]), []).append(r["text"])
    for (lang, kind), texts in sorted(by_lang.items()):
        if kind == "sentences":  # paragraphs of 6 sentences, lines of 2 sentences
            for j in range(0, len(texts), 6):
                chunk = texts[j : j + 6]
                rows.append((f"lingua-{lang}-{j}", "\n".join(" ".join(chunk[k : k + 2]) for k in range(0, 6, 2))))
        else:
            rows.append((f"lingua-{lang}-{kind}", "\n".join(texts)))
    heads = corpora_jsonl("quality_clickbait_headlines/clickbait_headlines_sample.jsonl")
    for r in heads:
        rows.append((f"head-{r['id']}", r["text"]))
    for j in range(0, len(heads), 20):
        rows.append((f"heads-{j}", "\n".join(r["text"] for r in heads[j : j + 20])))
    for r in corpora_jsonl("code_permissive/code_files.jsonl"):
        rows.append((f"code-{r['repo']}-{r['path']}", r["content"]))
    random.Random(seed).shuffle(rows)
    return [Document(id=i, text=t, source="bench", domain="web") for i, t in rows]


def run_ours(docs: list[Document], batch: int = 256) -> dict[str, str | None]:
    """Our chain; returns doc id -> first drop reason (None when kept)."""
    from filters.c4 import C4Quality
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition
    from filters.langid import FastTextLangId

    lid = FastTextLangId()
    quality = [
        GopherRepetition(language="en"),
        GopherQuality(language="en"),
        C4Quality(filter_no_terminal_punct=False, language="en"),  # FineWeb's setting
        FineWebQuality(language="en"),
    ]
    out: dict[str, str | None] = {}
    for b in range(0, len(docs), batch):
        chunk = [Document(d.id, d.text, d.source, d.domain) for d in docs[b : b + batch]]
        for d, res in zip(chunk, lid.filter_batch(chunk)):
            if res is not True:
                out[d.id] = res[1]
                continue
            out[d.id] = None
            for f in quality:
                res = f.filter(d)
                if res is not True:
                    out[d.id] = res[1]
                    break
    return out


def run_chain_only(docs: list[Document]) -> dict[str, str | None]:
    """The same five filters through `filters.base.run_chain` (what a stage runs); doc id -> first drop reason."""
    from filters.base import ChainStats, run_chain
    from filters.c4 import C4Quality
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition
    from filters.langid import FastTextLangId

    steps = [
        FastTextLangId(),
        GopherRepetition(language="en"),
        GopherQuality(language="en"),
        C4Quality(filter_no_terminal_punct=False, language="en"),
        FineWebQuality(language="en"),
    ]
    lineage: list = []
    fresh = [Document(d.id, d.text, d.source, d.domain) for d in docs]
    out: dict[str, str | None] = {d.id: None for d in fresh}
    list(run_chain(fresh, steps, lineage, ChainStats()))
    for rec in lineage:
        if rec.action == "dropped":
            out[rec.doc_id] = rec.reason
    return out


def datatrove_lid_filter():
    """datatrove's LanguageFilter whose FT176LID loads our sha256-checked lid.176.ftz instead of downloading."""
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils.lid import FT176LID

    class LocalFT176LID(FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                from core.assets import asset_path
                from filters.lid176 import load_lid_model

                load_lid_model()  # silences fasttext's load warning
                self._model = _FastText(str(asset_path("lid.176")))
            return self._model

    lf = LanguageFilter(language_threshold=0.65)
    lf.model = LocalFT176LID()  # NOTE: the default FT176LID would download lid.176.bin on first predict
    return lf


def run_datatrove(docs: list[Document]) -> dict[str, str | None]:
    """datatrove's LocalPipelineExecutor over the same texts; returns doc id -> first drop reason."""
    from datatrove.data import Document as DTDocument
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.writers.disk_base import DiskWriter

    reasons: dict[str, str | None] = {}

    class Collect(DiskWriter):
        """Exclusion writer that records reasons in memory (no disk)."""

        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def _write(self, document, file_handler, filename):  # abstract in DiskWriter; never called
            raise NotImplementedError

        def write(self, doc, rank=0, **kwargs):
            reasons[doc.id] = f"{self.prefix}_{doc.metadata.get('filter_reason', 'dropped')}"

    def source(data, rank: int = 0, world_size: int = 1):
        for d in docs:
            yield DTDocument(text=d.text, id=d.id, metadata={})

    def sink(data, rank: int = 0, world_size: int = 1):
        for d in data:
            reasons[d.id] = None
        yield from ()

    lid = datatrove_lid_filter()
    lid.exclusion_writer = Collect("langid")
    steps = [
        source,
        lid,
        GopherRepetitionFilter(exclusion_writer=Collect("gopher_repetition")),
        GopherQualityFilter(exclusion_writer=Collect("gopher_quality")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=Collect("c4")),
        FineWebQualityFilter(exclusion_writer=Collect("fineweb")),
        sink,
    ]
    LocalPipelineExecutor(pipeline=steps, tasks=1, workers=1, logging_dir=None, skip_completed=False).run()
    return reasons


def _normalise(reason: str | None) -> str | None:
    """Map datatrove's un-prefixed reasons onto ours for comparison."""
    if reason is None:
        return None
    from filters import c4, fineweb, gopher_quality, gopher_repetition

    reasons = (gopher_repetition, gopher_quality, c4, fineweb)
    DATATROVE_REASONS = {k: v for m in reasons for k, v in m.DATATROVE_REASONS.items()}

    prefix, _, rest = reason.partition("_")
    if prefix == "langid":
        return "langid_low_score"
    for (pre, dt_reason), ours in DATATROVE_REASONS.items():
        if reason == f"{pre}_{dt_reason}":
            return ours
    return reason


def _timed(fn, docs) -> tuple[float, dict]:
    t0 = time.perf_counter()
    res = fn(docs)
    return time.perf_counter() - t0, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", default="benchmarks/out/filters.md", help="table file (BENCHMARKS.md is curated by hand)"
    )
    args = parser.parse_args()
    import logging

    from loguru import logger

    logger.remove()  # datatrove's per-step stats logging would dominate the output
    logging.disable(logging.WARNING)
    all_docs = build_docs()
    # warm both sides (model loads, spacy.blank) outside the timings
    run_ours(all_docs[:50])
    run_datatrove(all_docs[:50])
    rows, disagreements = [], []
    for n in (args.n, 2 * args.n):
        docs = all_docs[:n]
        t_ours, t_dt = [], []
        for _ in range(args.repeats):
            dt, ours = _timed(run_ours, docs)
            t_ours.append(dt)
            dt, theirs = _timed(run_datatrove, docs)
            t_dt.append(dt)
        diff = [(d.id, ours[d.id], _normalise(theirs.get(d.id))) for d in docs]
        diff = [x for x in diff if x[1] != x[2]]
        disagreements += diff[:5]
        kept = sum(v is None for v in ours.values())
        rows.append((n, statistics.median(t_ours), statistics.median(t_dt), len(diff), kept))
    lines = [
        f"Filters benchmark ({datetime.date.today().isoformat()}; {machine()}); median of {args.repeats} runs, "
        "single process.",
        "",
        "| docs | kept | ours s | ours docs/s | datatrove s | datatrove docs/s | speed-up | disagreements |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, to, td, nd, kept in rows:
        lines.append(f"| {n} | {kept} | {to:.2f} | {n / to:,.0f} | {td:.2f} | {n / td:,.0f} | {td / to:.2f}x | {nd} |")
    (n1, to1, td1, *_), (n2, to2, td2, *_) = rows
    lines += ["", f"Time growth N -> 2N: ours x{to2 / to1:.2f}, datatrove x{td2 / td1:.2f} (linear = x2.00)."]
    if disagreements:
        lines += ["", "First disagreements (id, ours, datatrove): " + "; ".join(map(str, disagreements))]
    table = "\n".join(lines)
    print(table)
    intro = __doc__.split("\n\n")[1]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(f"# Filters: corpusforge chain vs datatrove\n\n{intro}\n\n{table}\n")


if __name__ == "__main__":
    if any(a == "--workers" or a.startswith("--workers=") for a in sys.argv[1:]):
        from benchmarks.bench_filters_workers import workers_main

        workers_main(sys.argv[1:])  # the whole-process comparison at N workers
    else:
        main()
