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
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

from schemas import Document

CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))


def _jsonl(rel: str) -> list[dict]:
    with (CORPORA / rel).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_docs(seed: int = 0) -> list[Document]:
    """Every document of the mixed benchmark set, shuffled with `seed` (about 11k documents)."""
    rows: list[tuple[str, str]] = []  # (id, text)
    for r in _jsonl("multilingual_udhr/udhr_full_selected.jsonl"):
        rows.append((f"udhr-full-{r['code']}", r["text"]))
    for r in _jsonl("multilingual_udhr/udhr_article1.jsonl"):
        rows.append((f"udhr-a1-{r['code']}", r["text"]))
    for name in ("gsm8k_test", "gsm8k_test_socratic"):
        for i, r in enumerate(_jsonl(f"stem_math/{name}.jsonl")):
            rows.append((f"{name}-{i}", f"{r['question']}\n\n{r['answer']}"))
    for name in ("math500_test", "math_test_sample_not_in_math500"):
        for i, r in enumerate(_jsonl(f"stem_math/{name}.jsonl")):
            rows.append((f"{name}-{i}", f"{r['problem']}\n\n{r['solution']}"))
    for i, r in enumerate(_jsonl("stem_math/mmlu_stem_test.jsonl")):
        rows.append((f"mmlu-{i}", r["question"] + "\n" + "\n".join(f"- {c}" for c in r["choices"])))
    by_lang: dict[tuple[str, str], list[str]] = {}
    for r in _jsonl("multilingual_lingua_testdata/lingua_testdata_sample.jsonl"):
        by_lang.setdefault((r["lang"], r["kind"]), []).append(r["text"])
    for (lang, kind), texts in sorted(by_lang.items()):
        if kind == "sentences":  # paragraphs of 6 sentences, lines of 2 sentences
            for j in range(0, len(texts), 6):
                chunk = texts[j : j + 6]
                rows.append((f"lingua-{lang}-{j}", "\n".join(" ".join(chunk[k : k + 2]) for k in range(0, 6, 2))))
        else:
            rows.append((f"lingua-{lang}-{kind}", "\n".join(texts)))
    heads = _jsonl("quality_clickbait_headlines/clickbait_headlines_sample.jsonl")
    for r in heads:
        rows.append((f"head-{r['id']}", r["text"]))
    for j in range(0, len(heads), 20):
        rows.append((f"heads-{j}", "\n".join(r["text"] for r in heads[j : j + 20])))
    for r in _jsonl("code_permissive/code_files.jsonl"):
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


def _datatrove_lid_filter():
    """datatrove's LanguageFilter whose FT176LID loads our sha256-checked lid.176.ftz instead of downloading."""
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils.lid import FT176LID

    class LocalFT176LID(FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                from filters.assets import asset_path
                from filters.langid import load_lid_model

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

    lid = _datatrove_lid_filter()
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


def machine() -> str:
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} CPUs (nproc), {model}, Python {platform.python_version()}"


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


# --- whole processes at the worker count users run (issue 8) -------------------------------------------------------

_ALL_DOMAINS = ["web", "stem", "code"]
# The same five filters as `run_ours`, as a stage's [filters] table, on every domain as datatrove runs them.
# lid.176 is datatrove's model: the same work. The LID cascade (issue 11) is the extra table of `--with-cascade`:
# other decisions, so it is compared with our lid.176 chain (before / after), not with datatrove's kept set.
STAGE_FILTERS = {
    "langid": {"model": "lid176", "min_score": 0.65, "domains": _ALL_DOMAINS},
    "gopher_repetition": {"language": "en", "domains": _ALL_DOMAINS},
    "gopher_quality": {"language": "en", "domains": _ALL_DOMAINS},
    "c4": {"filter_no_terminal_punct": False, "language": "en", "domains": _ALL_DOMAINS},
    "fineweb": {"language": "en", "domains": _ALL_DOMAINS},
}


def _bench_dir() -> None:
    import sys

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


# `--with-cascade` variants: tool name -> the langid table's changes.
CASCADE_VARIANTS = {
    "cascade": {"model": "cascade"},  # the stage default: lingua in low accuracy mode
    "cascade-high200": {"model": "cascade", "lingua_high_accuracy_below": 200},  # high accuracy on short prose
}


def workers_child_ours(prep: Path, inp: Path, out: Path, workers: int, lid: dict | None = None) -> None:
    """Our filter step over the ingested Parquet units, through `make_executor("local", workers)`.

    Args:
        lid: changes to the langid table (None: lid.176 as datatrove; see CASCADE_VARIANTS).
    """
    from filters.chain import FILTERS
    from filters.step import FilterStep
    from pipeline.executors import make_executor
    from pipeline.layout import RunLayout
    from pipeline.runner import run_step

    _bench_dir()
    from bench_dedup import ingest

    config = {name: STAGE_FILTERS.get(name, {"enabled": False}) for name in FILTERS}
    config["langid"] = {**config["langid"], **(lid or {})}
    docs = ingest(inp, prep)  # every unit's marker matches: a listing
    with make_executor("local", workers) as ex:
        run_step(FilterStep(config, docs), RunLayout(out), ex)


def workers_child_datatrove(prep: Path, out: Path, workers: int) -> None:
    """datatrove: ParquetReader -> the same five filters -> ParquetWriter, LocalPipelineExecutor(tasks=workers)."""
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)
    steps = [
        ParquetReader(str(prep / "steps" / "ingest" / "units"), glob_pattern="*/docs/*.parquet"),
        _datatrove_lid_filter(),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        ParquetWriter(str(out / "kept")),
    ]
    LocalPipelineExecutor(steps, tasks=workers, workers=workers, logging_dir=None, skip_completed=False).run()


def _kept(tool: str, out: Path) -> set[str]:
    import pyarrow.parquet as pq

    units = out / "steps" / "filter" / "units"
    files = units.glob("*/docs/*.parquet") if tool != "datatrove" else (out / "kept").glob("*.parquet")
    return {i for p in sorted(files) for i in pq.read_table(p, columns=["id"])["id"].to_pylist()}


def workers_main(argv: list[str]) -> None:
    """Both filter chains as whole processes at 1 and 2 workers, reading the same Parquet documents."""
    import shutil
    import sys

    _bench_dir()
    from bench_dedup import ingest, write_input
    from bench_stage import machine as stage_machine
    from bench_stage import measure

    ap = argparse.ArgumentParser(description="filter chain vs datatrove as whole processes at N workers")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", type=int, default=8, help="JSONL input files = ingest units")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cf-bench-filters-workers"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/filters_workers.md"))
    ap.add_argument(
        "--with-cascade",
        action="store_true",
        help="also time our chain with the default LID cascade instead of lid.176 (before/after issue 11)",
    )
    args = ap.parse_args(argv)
    docs = [{"id": str(d.id), "text": d.text} for d in build_docs()[: args.n]]
    work = args.workdir
    inp = write_input(work, docs, args.parts)
    prep = work / "prep"
    shutil.rmtree(prep, ignore_errors=True)
    ingest(inp, prep)
    mib = sum(p.stat().st_size for p in inp.glob("*.jsonl")) / 2**20
    rows, cascade_rows = [], []
    for workers in [int(w) for w in args.workers.split(",")]:
        runs: dict[str, list] = {"ours": [], "datatrove": []} | {v: [] for v in CASCADE_VARIANTS if args.with_cascade}
        kept: dict[str, set[str]] = {}
        for _ in range(args.repeats):
            for tool in runs:  # alternate, so a drift in machine speed hits both
                out = work / f"out-{tool}-{workers}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--workers-child",
                    tool,
                    str(prep),
                    str(inp),
                    str(out),
                    str(workers),
                ]
                m = measure(cmd, Path(__file__).resolve().parents[1], work / f"{tool}-{workers}.log", 900)
                if m.rc != 0:
                    log = (work / f"{tool}-{workers}.log").read_text()
                    raise RuntimeError(f"{tool} (workers={workers}) failed with exit code {m.rc}:\n{log[-2000:]}")
                runs[tool].append(m)
                kept[tool] = _kept(tool, out)
        med = {t: statistics.median(m.seconds for m in ms) for t, ms in runs.items()}
        tree = {t: statistics.median(m.tree_mib for m in ms) for t, ms in runs.items()}
        largest = {t: statistics.median(m.largest_mib for m in ms) for t, ms in runs.items()}
        differ = len(kept["ours"] ^ kept["datatrove"])
        rows.append((workers, med, tree, largest, {t: len(k) for t, k in kept.items()}, differ))
        for v in CASCADE_VARIANTS if args.with_cascade else ():
            cascade_rows.append(
                (
                    workers,
                    v,
                    med["ours"],
                    med[v],
                    tree["ours"],
                    tree[v],
                    len(kept["ours"]),
                    len(kept[v]),
                    len(kept["ours"] ^ kept[v]),
                )
            )
    lines = [
        f"Filters as whole processes ({datetime.date.today().isoformat()}; {stage_machine()}): {args.n} documents "
        f"({mib:.1f} MiB), {args.parts} Parquet inputs, median of {args.repeats}; ours writes kept docs and lineage, "
        "datatrove the kept docs.",
        "",
        "| workers | ours s | datatrove s | speed-up | ours tree MiB | datatrove tree MiB | ours largest MiB "
        "| datatrove largest MiB | kept ours / datatrove | kept differ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w, med, tree, largest, kept_n, differ in rows:
        lines.append(
            f"| {w} | {med['ours']:.1f} | {med['datatrove']:.1f} | {med['datatrove'] / med['ours']:.2f}x "
            f"| {tree['ours']:,.0f} | {tree['datatrove']:,.0f} | {largest['ours']:,.0f} "
            f"| {largest['datatrove']:,.0f} | {kept_n['ours']:,} / {kept_n['datatrove']:,} | {differ} |"
        )
    if cascade_rows:
        lines += [
            "",
            "Our chain with lid.176 (before issue 11) vs the LID cascade (after; `cascade-high200`: "
            "lingua_high_accuracy_below = 200), same input and steps:",
            "",
            "| workers | variant | lid.176 s | variant s | variant / lid.176 time | lid.176 tree MiB "
            "| variant tree MiB | kept lid.176 / variant | kept differ |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for w, v, t_lid, t_cas, m_lid, m_cas, k_lid, k_cas, differ in cascade_rows:
            lines.append(
                f"| {w} | {v} | {t_lid:.1f} | {t_cas:.1f} | {t_cas / t_lid:.2f}x | {m_lid:,.0f} "
                f"| {m_cas:,.0f} | {k_lid:,} / {k_cas:,} | {differ} |"
            )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Filters at N workers: corpusforge vs datatrove\n\n{table}\n")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, the repo root is not on it
    if len(sys.argv) > 1 and sys.argv[1] == "--workers-child":
        tool, (prep, inp, out), n = sys.argv[2], map(Path, sys.argv[3:6]), int(sys.argv[6])
        if tool == "ours" or tool in CASCADE_VARIANTS:
            workers_child_ours(prep, inp, out, n, CASCADE_VARIANTS.get(tool))
        else:
            workers_child_datatrove(prep, out, n)
    elif any(a == "--workers" or a.startswith("--workers=") for a in sys.argv[1:]):
        workers_main(sys.argv[1:])  # the whole-process comparison at N workers
    else:
        main()
