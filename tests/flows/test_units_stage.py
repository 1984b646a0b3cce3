"""The step layer end to end: the same bytes at any worker count and with Ray, near-duplicates across units,
real SIGKILLs with resume, and every config table checked before any work."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from flows.query import connect
from flows.stage import stage_flow
from tests.conftest import REPO_ROOT, cli_env
from tests.flows.corpus_fixture import EVAL_QUESTION, outputs, write_corpus, write_split_corpus


@pytest.fixture(scope="module")
def split_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    sources, cfg = write_split_corpus(root)
    return root, sources, cfg


@pytest.fixture(scope="module")
def harness(prefect_api):
    """The session's Prefect server (tests/conftest.py): flows of this module report to it."""
    return prefect_api


@pytest.fixture(scope="module")
def reference(harness, split_corpus):
    root, sources, cfg = split_corpus
    out = root / "ref-w1"
    summary = stage_flow(stage="general", sources=str(sources), out=str(out), config=str(cfg), workers=1)
    return out, summary


def test_byte_identical_at_one_and_two_workers_and_on_ray(harness, split_corpus, reference):
    root, sources, cfg = split_corpus
    ref_out, ref = reference
    assert ref["units"]["ingest"]["units"] >= 7  # 5 web files, stem, code: the work really is split
    want = outputs(ref_out)
    assert any(k.startswith("shards/general/shard-") for k in want) and any("lineage" in k for k in want)
    for workers, executor in ((2, "local"), (2, "ray")):
        out = root / f"{executor}-w{workers}"
        got = stage_flow(
            stage="general", sources=str(sources), out=str(out), config=str(cfg), workers=workers, executor=executor
        )
        assert got["docs_final"] == ref["docs_final"]
        have = outputs(out)
        assert sorted(have) == sorted(want), (executor, workers)
        assert [k for k in want if have[k] != want[k]] == [], (executor, workers)


def test_near_duplicates_in_different_units_are_found(reference):
    out, _ = reference
    con = connect(out)
    rows = con.execute(
        "SELECT l.action, l.dup_cluster_id, i.path FROM lineage l JOIN ingested i ON i.id = l.doc_id "
        "WHERE l.step = 'minhash_dedup' ORDER BY l.action"
    ).fetchall()
    dropped = [r for r in rows if r[0] == "dropped"]
    kept = [r for r in rows if r[0] == "kept"]
    assert len(dropped) >= 2, rows  # the in-file near-dup and the one in part-3
    cross = [r for r in dropped if r[2].endswith("part-3.jsonl")]
    assert len(cross) == 1, rows
    survivor = con.execute("SELECT path FROM ingested WHERE id = ?", [cross[0][1]]).fetchone()[0]
    assert survivor.endswith("part-1.jsonl")  # the first in global input order survives
    assert all(k[1] for k in kept)


def test_ingested_view_joins_dropped_documents_to_their_text_and_source(reference):
    out, summary = reference
    con = connect(out)
    n = con.execute("SELECT count(*) FROM ingested").fetchone()[0]
    assert n == summary["records_read"] - summary["quarantined"]
    row = con.execute(
        "SELECT i.source, i.domain, i.text FROM lineage l JOIN ingested i ON i.id = l.doc_id "
        "WHERE l.step = 'decontam' AND l.action = 'dropped'"
    ).fetchone()
    assert row[0] == "math-problems" and row[1] == "stem" and EVAL_QUESTION in row[2]


# --- SIGKILL at random moments, then resume -----------------------------------------------------------------

KILL_STEPS = [
    "ingest",
    "filter",
    "dedup_exact_keys",
    "dedup_exact",
    "dedup_minhash_signatures",
    "dedup_minhash_edges",
    "dedup_minhash",
    "decontam",
    "final",
    "tokenize",
    "shards",
]


def _started(run_dir: Path, step: str) -> bool:
    units = run_dir / "steps" / step / "units"
    return units.is_dir() and any(units.iterdir())


def _kill_during(
    cmd: list[str], env: dict[str, str], run_dir: Path, step: str, rng: random.Random
) -> list[psutil.Process]:
    """Start the stage, SIGKILL its main process soon after `step` starts; return its process tree at that
    moment (workers, the forkserver, the private Prefect server)."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not _started(run_dir, step) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        tree = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return tree


def _survivors(tree: list[psutil.Process], grace_s: float) -> list[str]:
    """The processes of `tree` still running after `grace_s` (psutil.Process compares creation times, so a
    reused pid is not mistaken for a survivor); each is described and then killed, so one failure does not
    leave load behind for the next tests."""
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    found = []
    for p in alive:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(f"{p.pid} (parent {p.ppid()}): {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_same_bytes(
    tmp_path, split_corpus, reference, prefect_api_env
):
    root, sources, cfg = split_corpus
    ref_out, ref = reference
    run_dir = tmp_path / "killed"
    log = tmp_path / "units.log"
    cmd = [
        sys.executable,
        "-m",
        "flows.stage",
        "general",
        "--sources",
        str(sources),
        "--config",
        str(cfg),
        "--out",
        str(run_dir),
        "--workers",
        "2",
    ]
    rng = random.Random(2026)
    kills = list(KILL_STEPS)  # one kill inside every step
    orphans = []
    for i, step in enumerate(kills):
        # The first kills use the run's private temporary Prefect server, which must die with the run too; the
        # rest report to the session's server (a private one costs seconds to start each time).
        api = {} if i < 3 else prefect_api_env
        tree = _kill_during(
            cmd,
            cli_env(tmp_path, PREFECT_LOGGING_LEVEL="WARNING", CORPUSFORGE_UNIT_LOG=str(log), **api),
            run_dir,
            step,
            rng,
        )
        # SIGKILL from the kernel is immediate, but a loaded 2-core machine may take a moment to deliver it.
        orphans += [f"kill during {step}: {who}" for who in _survivors(tree, grace_s=10.0)]
    assert orphans == [], f"processes left behind after SIGKILL: {orphans}"
    final = subprocess.run(
        cmd + ["--json"],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path, PREFECT_LOGGING_LEVEL="WARNING", CORPUSFORGE_UNIT_LOG=str(log)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert outputs(run_dir) == outputs(ref_out)
    con = connect(run_dir)
    assert con.execute("SELECT count(*) - count(DISTINCT id) FROM docs").fetchone()[0] == 0
    summary = json.loads((run_dir / "funnel.json").read_text())
    assert summary["records_read"] == ref["records_read"] and summary["docs_final"] == ref["docs_final"]
    # Finished units are not redone: each unit was computed once, or twice when a kill caught it in flight
    # (at most 2 workers' units per kill).
    runs = Counter(line for line in log.read_text().splitlines())
    total_units = sum(v["units"] for v in summary["units"].values())
    redone = sum(n - 1 for n in runs.values())
    assert max(runs.values()) <= 2 and redone <= 2 * len(kills), runs.most_common(5)
    assert sum(runs.values()) >= total_units  # every unit ran at least once across the attempts


# --- config errors before any work ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table, bad, message",
    [
        ("[dedup.minhash]", "num_bandz = 28", "[dedup.minhash] num_bandz = 28: unknown key"),
        ("[dedup.minhash]", "num_bands = -3", "[dedup.minhash] num_bands = -3: must be >= 0"),
        ("[dedup.exact]", "normalise = true", "[dedup.exact] normalise = True: unknown key"),
        ("[decontam]", "ngrams = 13", "[decontam] ngrams = 13: unknown key"),
        ("[filters.langid]", 'min_score = "high"', "[filters.langid] min_score = 'high': expected a number"),
        ("[filters.toxicity]", "max_score = -0.5", "[filters.toxicity] max_score = -0.5: must be >= 0"),
        ("[train]", 'confg = "x.toml"', "[train] confg = 'x.toml': unknown key"),
        ("[shards]", 'tokenizer = "gpt9"', "[shards] tokenizer = 'gpt9': unknown"),
        ("[mixture]", "sede = 3", "[mixture] unknown key"),
    ],
)
def test_a_bad_key_or_value_in_any_table_is_one_line_before_any_work(tmp_path, table, bad, message):
    sources = write_corpus(tmp_path)
    cfg = tmp_path / "stage.toml"
    body = f'stage = "general"\nsources = "{sources}"\n{table}\n{bad}\n'
    if table == "[decontam]":
        body += '[[decontam.eval_sets]]\nname = "x"\npath = "x.jsonl"\nrequired = false\n'
    cfg.write_text(body)
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "flows.stage", "general", "--config", str(cfg), "--out", str(out)],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path, PREFECT_LOGGING_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and str(cfg) in lines[0], res.stderr
    assert not out.exists()  # nothing ran


def test_a_missing_required_eval_set_fails_before_any_work(tmp_path):
    sources = write_corpus(tmp_path)
    cfg = tmp_path / "stage.toml"
    cfg.write_text(f'sources = "{sources}"\n[[decontam.eval_sets]]\nname = "gsm8k"\npath = "nowhere.jsonl"\n')
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "flows.stage", "general", "--config", str(cfg), "--out", str(out)],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path, PREFECT_LOGGING_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "nowhere.jsonl does not exist" in res.stderr and not out.exists()
