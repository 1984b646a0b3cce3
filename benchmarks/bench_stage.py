"""The whole `general` stage from outside, as whole processes: ours (`python -m flows.stage general`) vs datatrove.

Same documents on both sides, written once as JSONL (one folder per domain, `--parts` files each):

- ours: `python -m flows.stage general --sources S --config C --out O --workers N [--executor ray]`, where C is
  a copy of configs/stages/general.toml with only the filters datatrove also has (`--filters prose`: Gopher
  repetition, Gopher quality, C4 with `filter_no_terminal_punct = false`, FineWeb, on every domain; `--filters
  none`: no filter), exact dedup and decontamination off, MinHash at FineWeb's 14 bands x 8 rows (word 5-grams;
  ours also verifies candidates at estimated Jaccard >= 0.4), and the stage's shards on: ours also tokenizes
  (o200k_harmony), packs and writes the shards, the datatrove and Megatron exports and the manifest;
- datatrove: `LocalPipelineExecutor(tasks=N, workers=N)` running JsonlReader -> the same four filters ->
  ParquetWriter, then its four MinHash stages (signatures, buckets with tasks = 14, clusters, filter) ->
  ParquetWriter, with its default `MinhashConfig` (5-grams, 14 x 8, 64-bit hashes): this file run as
  `--child-datatrove`.

Each run is one process tree, timed from outside (start to exit, start-up included). Memory: the process tree is
polled every 50 ms (psutil); "tree" is the peak of the summed RSS of every process in it (shared pages count
once per process), "largest" the peak RSS of the largest single process (the kernel's ru_maxrss from `wait4`,
or the sampled peak of a pool worker, which the main process does not wait for, when larger), and "worker" the
largest sampled peak among the processes that run units (pool or Ray workers; the main process at one worker).
The per-step table comes from the run directory: each step's `_STEP.json` is written when the step ends, so a
step's wall time is the gap between consecutive markers (the first from the run lock, taken when
the flow starts); a reduce's time is its marker minus the step's last unit marker.

Input: the real texts of ../shared/corpora (UDHR, lingua sentences as paragraphs, clickbait headlines in lists
of 20, GSM8K and its socratic twin, MATH, MMLU-STEM, 410 source files), in a seeded order; one document in
ten is a planted near-duplicate (3% of its words replaced) of an earlier one, so MinHash has clusters to find.
Beyond one pass over the texts, documents are further copies with 30% of their words replaced by words of the
same text (5-gram Jaccard ~0.1: not near-duplicates), so every step's work grows with the input.

Results are appended to benchmarks/out/stage_runs.jsonl (one JSON row per run) and the tables, built from every
row of that file, are printed and written to benchmarks/out/stage.md; run the matrix in pieces and add
`--report-only` to print the tables again. One benchmark at a time:

    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_stage.py --docs 10000 --scales 1 --workers 1,2 \
        --executors local,ray --sides ours,datatrove --filters prose --repeats 2
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CORPUSFORGE_CORPORA", ROOT.parent / "shared" / "corpora"))
GENERAL = ROOT / "configs" / "stages" / "general.toml"
OUT = ROOT / "benchmarks" / "out"
DOMAINS = ("web", "stem", "code")
PROSE = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
BANDS, ROWS = 14, 8  # FineWeb's reference, datatrove's MinhashConfig default
NEAR_DUP_SHARE, NEAR_DUP_EDIT, COPY_EDIT = 0.1, 0.03, 0.3


# --- documents -------------------------------------------------------------------------------------------


def _jsonl(rel: str) -> list[dict]:
    path = CORPORA / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the benchmark needs ../shared/corpora (or CORPUSFORGE_CORPORA)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def real_texts() -> list[tuple[str, str]]:
    """(domain, text) of every real text used, exact repeats removed, in a fixed order."""
    rows: list[tuple[str, str]] = []
    for f in ("multilingual_udhr/udhr_full_selected.jsonl", "multilingual_udhr/udhr_article1.jsonl"):
        rows += [("web", r["text"]) for r in _jsonl(f)]
    by_lang: dict[str, list[str]] = {}
    for r in _jsonl("multilingual_lingua_testdata/lingua_testdata_sample.jsonl"):
        if r["kind"] == "sentences":
            by_lang.setdefault(r["lang"], []).append(r["text"])
    for _, texts in sorted(by_lang.items()):  # paragraphs of 6 sentences, 2 per line (as bench_filters)
        for j in range(0, len(texts), 6):
            chunk = texts[j : j + 6]
            rows.append(("web", "\n".join(" ".join(chunk[k : k + 2]) for k in range(0, len(chunk), 2))))
    heads = _jsonl("quality_clickbait_headlines/clickbait_headlines_sample.jsonl")
    rows += [("web", "\n".join(r["text"] for r in heads[j : j + 20])) for j in range(0, len(heads), 20)]
    for name in ("gsm8k_test", "gsm8k_test_socratic"):
        rows += [("stem", f"{r['question']}\n\n{r['answer']}") for r in _jsonl(f"stem_math/{name}.jsonl")]
    for name in ("math500_test", "math_test_sample_not_in_math500"):
        rows += [("stem", f"{r['problem']}\n\n{r['solution']}") for r in _jsonl(f"stem_math/{name}.jsonl")]
    rows += [
        ("stem", r["question"] + "\n" + "\n".join(f"- {c}" for c in r["choices"]))
        for r in _jsonl("stem_math/mmlu_stem_test.jsonl")
    ]
    rows += [("code", r["content"]) for r in _jsonl("code_permissive/code_files.jsonl")]
    seen: set[str] = set()
    return [(d, t) for d, t in rows if t.strip() and not (t in seen or seen.add(t))]


def edit_words(text: str, rate: float, rng: random.Random) -> str:
    """Replace `rate` of the words by other words of the same text; whitespace (lines, indentation) is kept."""
    parts = re.split(r"(\s+)", text)
    words = [k for k in range(0, len(parts), 2) if parts[k]]
    if not words:
        return text
    pool = [parts[k] for k in words]
    for k in rng.sample(words, max(1, round(rate * len(words)))):
        parts[k] = rng.choice(pool)
    return "".join(parts)


def stage_documents(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` documents (id, domain, text): see the module docstring."""
    rng = random.Random(seed)
    bases = real_texts()
    rng.shuffle(bases)
    docs: list[tuple[str, str, str]] = []
    c = 0
    for i in range(n):
        if docs and rng.random() < NEAR_DUP_SHARE:
            _, domain, text = docs[rng.randrange(len(docs))]
            text = edit_words(text, NEAR_DUP_EDIT, rng)
        else:
            domain, text = bases[c % len(bases)]
            if c >= len(bases):
                text = edit_words(text, COPY_EDIT, rng)
            c += 1
        docs.append((f"d{i:07d}", domain, text))
    return docs


def build_input(root: Path, n: int, parts: int, seed: int = 0) -> dict[str, Any]:
    """Write the documents once under `root/input-<n>/<domain>/part-NNN.jsonl` (reused when complete)."""
    inp = root / f"input-{n}-s{seed}-p{parts}"
    stamp = inp / "_INPUT.json"
    if stamp.is_file():
        return json.loads(stamp.read_text())
    shutil.rmtree(inp, ignore_errors=True)
    docs = stage_documents(n, seed)
    info: dict[str, Any] = {"dir": str(inp), "docs": n, "bytes": 0, "by_domain": {}}
    for domain in DOMAINS:
        rows = [(i, t) for i, d, t in docs if d == domain]
        (inp / domain).mkdir(parents=True)
        step = -(-len(rows) // parts) if rows else 1
        for k in range(parts):
            with open(inp / domain / f"part-{k:03d}.jsonl", "w", encoding="utf-8") as f:
                for doc_id, text in rows[k * step : (k + 1) * step]:
                    f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        info["by_domain"][domain] = len(rows)
    info["bytes"] = sum(p.stat().st_size for p in inp.rglob("*.jsonl"))
    (inp / "sources.toml").write_text(
        "".join(
            f'[[source]]\nname = "bench-{d}"\ndomain = "{d}"\nformat = "jsonl"\npath = "{d}/*.jsonl"\n'
            f'license = "LicenseRef-bench"\n\n'
            for d in DOMAINS
        ),
        encoding="utf-8",
    )
    stamp.write_text(json.dumps(info))
    return info


# --- the stage config (a copy of general.toml) ---------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for these values (no control characters)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def dump_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Scalars, lists of scalars and nested tables (what a stage file holds, minus arrays of tables)."""
    scalars = [f"{k} = {_toml_value(v)}\n" for k, v in data.items() if not isinstance(v, dict)]
    out = (f"[{prefix}]\n" if prefix and (scalars or not data) else "") + "".join(scalars)
    for k, v in data.items():
        if isinstance(v, dict):
            out += ("\n" if out else "") + dump_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def stage_config(dest: Path, sources: Path, filters: str) -> Path:
    """configs/stages/general.toml with the filters both sides have, MinHash at 14 x 8, no exact dedup and no
    decontamination (datatrove's pipeline has neither), shards as the stage has them."""
    from core.stage_files import read_stage_file
    from filters.chain import FILTERS

    base = read_stage_file(GENERAL)[0]  # general.toml merged on its base file: every table written out below
    cfg = copy.deepcopy(base)
    cfg["sources"] = str(sources.resolve())
    cfg["filters"] = {name: {"enabled": False} for name in FILTERS}
    if filters == "prose":
        for name in PROSE:  # datatrove runs every filter on every document
            cfg["filters"][name] = {**base["filters"].get(name, {}), "domains": list(DOMAINS)}
    cfg["dedup"] = {
        "exact": {"enabled": False},
        "minhash": {**base["dedup"]["minhash"], "num_bands": BANDS, "rows_per_band": ROWS},
    }
    cfg["decontam"] = {"enabled": False}
    if "train" in base:
        cfg["train"] = {"config": str((GENERAL.parent / base["train"]["config"]).resolve())}
    dest.write_text(
        f"# bench_stage.py: a copy of {GENERAL.relative_to(ROOT)} (filters={filters})\n" + dump_toml(cfg),
        encoding="utf-8",
    )
    return dest


# --- measuring a process tree --------------------------------------------------------------------------------


@dataclass
class Measured:
    """One whole-process run: wall seconds, exit code, memory peaks in MiB (see the module docstring)."""

    seconds: float
    rc: int
    started: float  # time.time() at the start, to line up with file times
    ended: float
    tree_mib: float = 0.0  # peak of the summed RSS of the process tree (sampled)
    largest_mib: float = 0.0  # peak RSS of the largest single process (kernel, or sampled when larger)
    worker_mib: float = 0.0  # largest sampled peak among unit-running processes (main when none)
    main_mib: float = 0.0
    roles: dict[str, float] = field(default_factory=dict)  # role -> largest sampled peak MiB
    processes: int = 0


_FINAL_ROLES = ("main", "worker", "forkserver", "prefect-server")


def _role(p: Any, root: int, forkservers: set[int]) -> str:
    import psutil

    try:
        cmd = " ".join(p.cmdline())
        ppid = p.ppid()
    except psutil.Error:
        return "other"
    if p.pid == root:
        return "main"
    if cmd.startswith("ray::") or "default_worker.py" in cmd:  # a Ray worker, before and after it renames itself
        return "worker"
    if "forkserver" in cmd:
        if ppid in forkservers:
            return "worker"
        forkservers.add(p.pid)
        return "forkserver"
    if ppid in forkservers:
        return "worker"
    if "resource_tracker" in cmd:
        return "other"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "prefect-server"
    if "/ray/" in cmd or cmd.startswith("ray"):  # raylet, gcs_server, Ray's agents (paths inside the package)
        return "ray-system"
    try:
        return f"other: {p.name()}"
    except psutil.Error:
        return "other"


def measure(
    cmd: list[str],
    cwd: Path,
    log_path: Path,
    timeout: float,
    interval: float = 0.05,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run `cmd` in its own session, sample its process tree's RSS until it exits, kill leftovers."""
    import psutil

    with open(log_path, "w") as log:
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        done: dict[str, Any] = {}

        def reap() -> None:  # a blocking wait4 in a thread: the end time does not depend on the sampling
            _, status, usage = os.wait4(proc.pid, 0)
            done.update(t=time.perf_counter(), ended=time.time(), status=status, usage=usage)

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        peaks: dict[int, tuple[str, int]] = {}
        forkservers: set[int] = set()
        tree_peak = 0
        root = psutil.Process(proc.pid)
        while waiter.is_alive():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                role, peak = peaks.get(p.pid) or ("", 0)
                if role not in _FINAL_ROLES:  # a new process may not have exec'd yet (a Ray worker forked by raylet)
                    role = _role(p, proc.pid, forkservers)
                peaks[p.pid] = (role, max(peak, rss))
            tree_peak = max(tree_peak, total)
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                waiter.join()
                break
            waiter.join(interval)
        try:  # anything the run left in its session is ours to stop (a stray Ray or Prefect process)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    rc = os.waitstatus_to_exitcode(done["status"])
    roles: dict[str, float] = {}
    for role, peak in peaks.values():
        roles[role] = max(roles.get(role, 0.0), peak / 2**20)
        if role.startswith("other: "):
            roles["other"] = max(roles.get("other", 0.0), peak / 2**20)
    # ru_maxrss covers the child and the descendants it waited for; pool workers are the forkserver's children,
    # so the sampled per-process peaks can be larger. A short run can end before the first samples.
    largest = max([done["usage"].ru_maxrss / 1024, *roles.values()])
    return Measured(
        seconds=done["t"] - t0,
        rc=rc,
        started=started,
        ended=done["ended"],
        tree_mib=max(tree_peak / 2**20, largest),
        largest_mib=largest,
        worker_mib=roles.get("worker", roles.get("main", 0.0)),
        main_mib=roles.get("main", 0.0),
        roles=roles,
        processes=len(peaks),
    )


# --- where our time goes -----------------------------------------------------------------------------------------


def step_times(run_dir: Path, m: Measured) -> list[dict[str, Any]]:
    """Wall seconds per step of one of our runs, from the markers' file times (see the module docstring)."""
    markers = sorted((p.stat().st_mtime, p) for p in (run_dir / "steps").glob("*/_STEP.json"))
    funnel = json.loads((run_dir / "funnel.json").read_text())
    prev = (run_dir / ".lock").stat().st_mtime
    rows = [{"step": "start-up: interpreter, imports, Prefect server, flow", "seconds": prev - m.started}]
    for mtime, p in markers:
        step = p.parent.name
        marker = json.loads(p.read_text())
        s = marker["stats"]
        row = {
            "step": step,
            "seconds": mtime - prev,
            "units": len(marker["units"]),
            "docs_in": s["docs_in"],
            "docs_out": s["docs_out"],
        }
        reduce_marker = p.parent / "reduce" / "_SUCCESS.json"
        unit_ends = [u.stat().st_mtime for u in (p.parent / "units").glob("*/_SUCCESS.json")]
        if reduce_marker.is_file() and unit_ends:
            row["reduce_seconds"] = reduce_marker.stat().st_mtime - max(unit_ends)
        if len(rows) == 1:  # the run lock is taken before the executor starts
            row["note"] = "includes starting the executor (process pool or Ray)"
        if step == "shard_plan":  # the tokenize step's folder is removed after success (keep_token_cache = false)
            tok = funnel.get("shards", {}).get("tokenize", {})
            row["step"] = "publish corpus, tokenize, shard_plan"
            row["note"] = f"tokenize {tok.get('seconds', 0):.2f} s, {tok.get('chunks', 0)} chunks"
        rows.append(row)
        prev = mtime
    end = (run_dir / "funnel.json").stat().st_mtime
    rows.append({"step": "publish shards, exports, manifest, funnel", "seconds": end - prev})
    rows.append({"step": "exit: flush logs, stop workers, Ray and the Prefect server", "seconds": m.ended - end})
    return rows


def shards_seconds(steps: list[dict[str, Any]]) -> float:
    """Our tokenize + pack + shards + exports time: every segment after the `final` step up to the funnel."""
    names = [r["step"] for r in steps]
    if "final" not in names:
        return 0.0
    i = names.index("final")
    return sum(r["seconds"] for r in steps[i + 1 : -1])


# --- the two sides -------------------------------------------------------------------------------------------------


def run_ours(
    info: dict[str, Any], work: Path, filters: str, workers: int, executor: str, timeout: float
) -> dict[str, Any]:
    inp = Path(info["dir"])
    cfg = stage_config(work / f"general-{filters}.toml", inp / "sources.toml", filters)
    out = work / f"run-ours-{executor}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "flows.stage",
        "general",
        "--sources",
        str(inp / "sources.toml"),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--executor",
        executor,
    ]
    m = measure(cmd, ROOT, work / f"ours-{executor}-{workers}.log", timeout)
    row: dict[str, Any] = {"measured": asdict(m)}
    if m.rc != 0:
        row["error"] = (work / f"ours-{executor}-{workers}.log").read_text()[-2000:]
        return row
    funnel = json.loads((out / "funnel.json").read_text())
    row["docs_out"] = funnel["docs_final"]
    row["filtered_out"] = next((r["docs_out"] for r in funnel["funnel"] if r["step"] == "filter"), None)
    row["steps"] = step_times(out, m)
    row["shards_seconds"] = shards_seconds(row["steps"])
    row["tokens"] = funnel.get("shards", {}).get("total_tokens")
    shutil.rmtree(out, ignore_errors=True)
    return row


def run_datatrove_side(info: dict[str, Any], work: Path, filters: str, workers: int, timeout: float) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out = work / f"run-datatrove-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-datatrove",
        info["dir"],
        str(out),
        str(workers),
        filters,
    ]
    m = measure(cmd, ROOT, work / f"datatrove-{workers}.log", timeout)
    row: dict[str, Any] = {"measured": asdict(m)}
    if m.rc != 0:
        row["error"] = (work / f"datatrove-{workers}.log").read_text()[-2000:]
        return row

    def rows_in(d: Path) -> int | None:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in d.glob("*.parquet")) if d.is_dir() else None

    row["docs_out"] = rows_in(out / "final")
    row["filtered_out"] = rows_in(out / "filtered")
    row["stages"] = json.loads((out / "stages.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return row


def datatrove_child(inp: Path, out: Path, workers: int, filters: str) -> None:
    """The datatrove side, in this process (see the module docstring); stage seconds to out/stages.json."""
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()  # its per-step stats logging would be most of the output
    logging.disable(logging.WARNING)
    cfg = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes, 64-bit xxhash: FineWeb's reference
    assert (cfg.n_grams, cfg.num_buckets, cfg.hashes_per_bucket) == (5, BANDS, ROWS), cfg
    n = workers
    common: dict[str, Any] = {"logging_dir": None, "skip_completed": False}
    stages: dict[str, float] = {}

    def run(name: str, pipeline: list, tasks: int) -> None:
        t0 = time.perf_counter()
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(n, tasks), **common).run()
        stages[name] = time.perf_counter() - t0

    def jsonl_input() -> JsonlReader:
        return JsonlReader(str(inp), glob_pattern="*/*.jsonl", text_key="text", id_key="id")

    source = jsonl_input
    if filters == "prose":
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        run(
            "read, filter, write",
            [
                jsonl_input(),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(filter_no_terminal_punct=False),
                FineWebQualityFilter(),
                ParquetWriter(str(out / "filtered")),
            ],
            n,
        )

        def source() -> ParquetReader:  # type: ignore[misc]
            return ParquetReader(str(out / "filtered"))

    run("minhash 1: signatures", [source(), MinhashDedupSignature(str(out / "sigs"), config=cfg)], n)
    run(
        "minhash 2: buckets",
        [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=cfg)],
        cfg.num_buckets,
    )
    run("minhash 3: clusters", [MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=cfg)], 1)
    run(
        "minhash 4: filter, write",
        [source(), MinhashDedupFilter(str(out / "remove")), ParquetWriter(str(out / "final"))],
        n,
    )
    (out / "stages.json").write_text(json.dumps(stages))


# --- tables --------------------------------------------------------------------------------------------------------


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (the lower middle one for an even count), plus median figures."""
    rows = sorted(rows, key=lambda r: r["measured"]["seconds"])
    mid = rows[(len(rows) - 1) // 2]
    med = {
        k: statistics.median(r["measured"][k] for r in rows)
        for k in ("seconds", "tree_mib", "largest_mib", "worker_mib", "main_mib")
    }
    return {**mid, "median": med, "n": len(rows)}


def _label(r: dict[str, Any]) -> str:
    return "datatrove" if r["side"] == "datatrove" else f"ours ({r['executor']})"


def tables(all_rows: list[dict[str, Any]]) -> str:
    ok = [r for r in all_rows if "error" not in r]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in ok:
        groups.setdefault((r["filters"], r["docs"], r["workers"], _label(r)), []).append(r)
    med = {k: _median_row(v) for k, v in groups.items()}
    out = []

    out.append("### Whole stage, ours vs datatrove (medians)\n")
    out.append(
        "| filters | docs | MB | workers | side | runs | s | docs/s | vs datatrove | tree peak MiB "
        "| largest process MiB | worker peak MiB | docs out | ours w/o tokenize+shards s |"
    )
    out.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(med, key=lambda k: (k[0], k[1], k[2], k[3] != "datatrove", k[3])):
        filters, docs, workers, label = key
        r = med[key]
        m = r["median"]
        dt = med.get((filters, docs, workers, "datatrove"))
        ratio = f"{dt['median']['seconds'] / m['seconds']:.2f}x" if dt and label != "datatrove" else ""
        noshard = ""
        if label != "datatrove":
            noshard = f"{statistics.median(x['measured']['seconds'] - x['shards_seconds'] for x in groups[key]):.1f}"
        out.append(
            f"| {filters} | {docs:,} | {r['mb']:.1f} | {workers} | {label} | {r['n']} | {m['seconds']:.1f} "
            f"| {docs / m['seconds']:,.0f} | {ratio} | {m['tree_mib']:,.0f} | {m['largest_mib']:,.0f} "
            f"| {m['worker_mib']:,.0f} | {r.get('docs_out', '')} | {noshard} |"
        )

    out.append("\n### Workers: speed-up from 1 to 2 (goal >= 1.7x)\n")
    out.append("| filters | docs | side | 1 worker s | 2 workers s | speed-up |")
    out.append("|---|---:|---|---:|---:|---:|")
    for (filters, docs, workers, label), r in sorted(med.items()):
        two = med.get((filters, docs, 2, label))
        if workers == 1 and two:
            s1, s2 = r["median"]["seconds"], two["median"]["seconds"]
            out.append(f"| {filters} | {docs:,} | {label} | {s1:.1f} | {s2:.1f} | {s1 / s2:.2f}x |")

    out.append("\n### Input doubling (goal <= 2.1x time per doubling, flat worker RSS)\n")
    out.append("| filters | workers | side | docs | s | x previous | worker peak MiB | tree peak MiB |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|")
    series: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for (filters, docs, workers, label), r in med.items():
        series.setdefault((filters, workers, label), []).append((docs, r))
    for (filters, workers, label), pts in sorted(series.items()):
        if len(pts) < 2:
            continue
        prev = None
        for docs, r in sorted(pts, key=lambda x: x[0]):
            m = r["median"]
            growth = f"{m['seconds'] / prev:.2f}x" if prev else ""
            out.append(
                f"| {filters} | {workers} | {label} | {docs:,} | {m['seconds']:.1f} | {growth} "
                f"| {m['worker_mib']:,.0f} | {m['tree_mib']:,.0f} |"
            )
            prev = m["seconds"]

    for key in sorted(k for k in med if k[3].startswith("ours")):
        r = med[key]
        filters, docs, workers, label = key
        out.append(
            f"\n### Where our time goes: filters={filters}, {docs:,} docs, {workers} worker(s), {label} "
            f"(the median run, {r['measured']['seconds']:.1f} s)\n"
        )
        out.append("| step | s | share | units | docs in | docs out | of which reduce s | note |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        total = r["measured"]["seconds"]
        for s in r["steps"]:
            red = f"{s['reduce_seconds']:.2f}" if "reduce_seconds" in s else ""
            out.append(
                f"| {s['step']} | {s['seconds']:.2f} | {100 * s['seconds'] / total:.0f}% | {s.get('units', '')} "
                f"| {s.get('docs_in', '')} | {s.get('docs_out', '')} | {red} | {s.get('note', '')} |"
            )
        out.append(f"| **without tokenize + shards** | {total - r['shards_seconds']:.2f} | | | | | | |")
    out.append("\n### Peak RSS by process (MiB, the median runs; tree = the summed peak)\n")
    roles = ("main", "worker", "forkserver", "prefect-server", "ray-system", "other")
    out.append("| filters | docs | workers | side | processes | " + " | ".join(roles) + " | tree |")
    out.append("|---|---:|---:|---|---:|" + "---:|" * (len(roles) + 1))
    for key in sorted(med):
        r = med[key]["measured"]
        cells = " | ".join(f"{r['roles'][x]:,.0f}" if x in r["roles"] else "" for x in roles)
        out.append(
            f"| {key[0]} | {key[1]:,} | {key[2]} | {key[3]} | {r['processes']} | {cells} | {r['tree_mib']:,.0f} |"
        )
    dts = [k for k in med if k[3] == "datatrove"]
    for key in sorted(dts):
        r = med[key]
        out.append(
            f"\ndatatrove stages (filters={key[0]}, {key[1]:,} docs, {key[2]} worker(s), median run): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        )
    errors = [r for r in all_rows if "error" in r]
    if errors:
        out.append(
            f"\n{len(errors)} run(s) failed; first: {errors[0]['side']} {errors[0].get('executor', '')} "
            f"workers={errors[0]['workers']}: ...{errors[0]['error'][-300:]}"
        )
    return "\n".join(out)


def machine() -> str:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10000, help="documents at scale 1")
    ap.add_argument("--scales", default="1", help="comma-separated multiples of --docs (e.g. 1,2,4)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--executors", default="local", help="ours: local and/or ray")
    ap.add_argument("--sides", default="ours,datatrove")
    ap.add_argument("--filters", default="prose", help="prose and/or none")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each configuration (sides alternate)")
    ap.add_argument("--parts", type=int, default=4, help="JSONL files per domain (ingest units)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run before it is killed")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cf-bench-stage"))
    ap.add_argument("--results", type=Path, default=OUT / "stage_runs.jsonl", help="raw rows (appended)")
    ap.add_argument("--write", type=Path, default=OUT / "stage.md", help="table file (BENCHMARKS.md is curated)")
    ap.add_argument("--report-only", action="store_true", help="print the tables of the rows already measured")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        for filters in args.filters.split(","):
            for scale in [int(s) for s in args.scales.split(",")]:
                info = build_input(args.workdir, args.docs * scale, args.parts)
                for workers in [int(w) for w in args.workers.split(",")]:
                    for rep in range(args.repeats):
                        for side in args.sides.split(","):
                            for executor in args.executors.split(",") if side == "ours" else ["-"]:
                                if side == "ours":
                                    row = run_ours(info, args.workdir, filters, workers, executor, args.timeout)
                                else:
                                    row = run_datatrove_side(info, args.workdir, filters, workers, args.timeout)
                                row.update(
                                    side=side,
                                    executor=executor,
                                    filters=filters,
                                    docs=info["docs"],
                                    mb=info["bytes"] / 1e6,
                                    workers=workers,
                                    repeat=rep,
                                    date=datetime.date.today().isoformat(),
                                    machine=machine(),
                                )
                                with open(args.results, "a") as f:
                                    f.write(json.dumps(row) + "\n")
                                m = row["measured"]
                                print(
                                    f"{side:9s} {executor:5s} filters={filters} docs={info['docs']} "
                                    f"workers={workers} rep={rep}: {m['seconds']:.1f} s, tree {m['tree_mib']:.0f} "
                                    f"MiB, largest {m['largest_mib']:.0f} MiB, docs out {row.get('docs_out')}"
                                    + (" FAILED" if "error" in row else ""),
                                    flush=True,
                                )
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    table = tables(rows)
    print(table)
    args.write.write_text(
        f"## Whole stage: `python -m flows.stage general` vs datatrove\n\n"
        f"{datetime.date.today().isoformat()}, {machine()}.\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-datatrove":
        datatrove_child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
